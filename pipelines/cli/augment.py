"""The augmentation commands: ``augment``, ``inspect`` and ``export``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from tinyaug.augment.recipe import CONTEXT_MODES, PAIR_MODES, REFERENCE_VARIANTS, Recipe
from tinyaug.errors import TinyaugError
from tinyaug.pipelines.augmentation import formats as export_formats
from tinyaug.pipelines.cli.common import apply, engine_options, friendly_errors, ray_settings, task_option
from tinyaug.pipelines.io.models import DEFAULT_MLM, PRECISIONS
from tinyaug.pipelines.io.tasks import get_task
from tinyaug.pipelines.io.vectors import EMBEDDED_VECTORS, FORMATS as VECTOR_FORMATS


MAX_SENTENCE_CHARS = 10_000  # inspect's sentence mode: far beyond any model's window, far below a flood


def model_options(func: Callable) -> Callable:
    """Options shared by every command that builds candidates."""
    return apply(func, [
        click.option("--mlm", default=DEFAULT_MLM, show_default=True,
                     help="Masked LM: a hub name (bert-base-uncased), a local model folder, or 'starter' "
                          "for the embedded offline model."),
        click.option("--vectors", default=EMBEDDED_VECTORS, show_default=True,
                     help="Word vectors: a GloVe/word2vec text or binary file, a gensim .kv file, or "
                          "glove-6b-50d (embedded)."),
        click.option("--vectors-format", type=click.Choice(VECTOR_FORMATS), default="auto", show_default=True),
        click.option("--trust-pickle", is_flag=True,
                     help="Allow loading gensim's native (pickle) vector format."),
        click.option("-k", "--candidates", "k", type=click.IntRange(min=1), default=15, show_default=True,
                     help="Candidates per word (K)."),
        click.option("-p", "--replace-prob", "p", type=click.FloatRange(0, 1), default=0.4, show_default=True,
                     help="Chance that an eligible word is replaced in a variant (p)."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True),
        click.option("--min-similarity", type=click.FloatRange(-1, 1), default=None,
                     help="Keep only candidates whose word vector is at least this similar (cosine) to "
                          "the replaced word's [default: no constraint].")
        ,
        click.option("--exclude-antonyms", is_flag=True,
                     help="Drop candidates that are WordNet antonyms of the replaced word (needs Debian's "
                          "wordnet-base).")
        ,
        click.option("--context", type=click.Choice(CONTEXT_MODES), default="masked", show_default=True,
                     help="Masked-LM input: the masked sentence alone, or the reference's pair "
                          "(masked sentence + original as segment B)."),
        click.option("--max-length", type=click.IntRange(min=8), default=None,
                     help="Model positions per masked context [default: the model's maximum]; words "
                          "beyond it are left untouched."),
        click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
                     help="Masked contexts per model forward."),
        click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto."),
        click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
                     help="Masked-LM arithmetic: fp32 (exact, the same rows whatever the batch size), or "
                          "faster bf16, int8 (CPU) or fp16 (GPU), whose candidates differ a little from "
                          "fp32's and depend on --batch-size (see README, Throughput)."),
    ])


def _load_models(mlm: str, vectors: str, vectors_format: str, trust_pickle: bool, device: str, precision: str):
    from tinyaug.pipelines.io.models import at_precision, load_masked_lm
    from tinyaug.pipelines.io.vectors import load_vectors

    loaded = at_precision(load_masked_lm(mlm, device), precision)
    return loaded, load_vectors(vectors, vectors_format, allow_pickle=trust_pickle)


def highlighted(text: str, changes: list[dict[str, Any]], column: str) -> str:
    """The variant text with its replaced words in bold green."""
    from tinyaug.pipelines.augmentation.inspect import change_segments

    return "".join(click.style(piece, fg="green", bold=True) if change else piece
                   for piece, change in change_segments(text, changes, column))


def describe_row(row: dict[str, Any], text_columns: list[str]) -> list[str]:
    lines = [f"  {column}: {highlighted(row[column], row['aug_changes'], column)}" for column in text_columns]
    if row["aug_changes"]:
        swaps = ", ".join(f"{c['original']}->{c['replacement']} ({c['source']} #{c['rank']})" for c in row["aug_changes"])
        lines.append(click.style(f"    changes: {swaps}", dim=True))
    return lines


def _ray_engine(settings: Any, mlm: str, vectors: str, vectors_format: str, trust_pickle: bool,
                precision: str) -> Any:
    if settings is None:
        return None
    from tinyaug.pipelines.scale.ray_engine import ModelSpec, RayEngine

    def started(actors: list[dict]) -> None:
        click.echo(f"Ray: {len(actors)} actors loaded the models", err=True)

    return RayEngine(settings, ModelSpec(mlm, vectors, vectors_format, trust_pickle, precision), on_start=started)


@click.command("augment")
@task_option(required=False)
@click.option("--data-dir", type=click.Path(file_okay=False), help="GLUE data folder (holds SST-2/train.tsv, ...). "
              "Without it (and without --input) the embedded sample of real GLUE rows is used.")
@click.option("--input", "input_path", type=click.Path(), help="A table instead of GLUE: .parquet, .jsonl, "
              ".csv, .tsv or a save_to_disk folder.")
@click.option("--split", default="train", show_default=True, help="train, dev (MNLI: dev_matched, dev_mismatched).")
@click.option("--from-hub", is_flag=True, help="Load the GLUE task from the nyu-mll/glue hub dataset (needs network).")
@click.option("--keep-source-columns", is_flag=True, help="GLUE: keep the file's columns that the hub schema "
              "lacks (ids, genre, ...) as source_<name> [default: drop them].")
@click.option("--text-columns", help="Comma-separated text columns (for tables that are not GLUE).")
@click.option("--label-column", help="The label column (for tables that are not GLUE).")
@click.option("--out", type=click.Path(file_okay=False), help="Output dataset folder [default: ./tinyaug-out/TASK-aug].")
@model_options
@click.option("-n", "--variants", "n", type=click.IntRange(min=0), default=20, show_default=True,
              help="Variants drawn per example (per text column in pair mode 'each').")
@click.option("--reference-n", is_flag=True, help="Use the reference script's N for the task (CoLA 30, MNLI 10, ...).")
@click.option("--pair-mode", type=click.Choice(PAIR_MODES), default="each", show_default=True,
              help="Pairs: vary each text column in turn (the reference), or all at once.")
@click.option("--limit", type=click.IntRange(min=1), help="Augment only the first N rows.")
@click.option("--shard-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Examples per shard (unit of resume).")
@engine_options
@click.option("--worker", hidden=True, help="Removed: use --engine ray.")
@click.option("--skip-bad-rows", is_flag=True, help="Skip and count malformed rows instead of stopping.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--show", type=click.IntRange(min=0), default=3, show_default=True, help="Examples to show when done.")
@friendly_errors
def augment_command(task, data_dir, input_path, split, from_hub, keep_source_columns, text_columns, label_column, out, mlm, vectors,
                    vectors_format, trust_pickle, k, p, seed, min_similarity, exclude_antonyms, context, max_length, batch_size, device, precision,
                    n, reference_n, pair_mode, limit, shard_size, engine, ray_address, actors, cpus_per_actor,
                    gpus_per_actor, worker, skip_bad_rows, overwrite, show):
    """Augment a GLUE task or a table TinyBERT-style into an Arrow dataset.

    Example: tinyaug augment --task sst2 --limit 100 --out runs/sst2-aug
    """
    from tinyaug.pipelines.augmentation.build import BuildOptions, augment_table, load_augmented
    from tinyaug.pipelines.io.tables import load_input

    if worker is not None:
        raise click.UsageError("--worker I/N was removed: run the shards on Ray instead, with --engine ray "
                               "(one actor per GPU: --gpus-per-actor 1; README, 'Scale-out on Ray')")
    settings = ray_settings(engine, ray_address, actors, cpus_per_actor, gpus_per_actor)
    if reference_n:
        if not task:
            raise click.UsageError("--reference-n needs --task")
        n = REFERENCE_VARIANTS[get_task(task).name]
    recipe = Recipe(variants_per_example=n, candidates_per_word=k, replace_prob=p, seed=seed,
                    mlm_context=context, pair_mode=pair_mode, max_length=max_length,
                    min_similarity=min_similarity, exclude_antonyms=exclude_antonyms)
    columns = tuple(c.strip() for c in text_columns.split(",")) if text_columns else ()
    table = load_input(task=task, data_dir=data_dir, input_path=input_path, split=split, text_columns=columns,
                       label_column=label_column, skip_bad_rows=skip_bad_rows, limit=limit, from_hub=from_hub,
                       keep_source_columns=keep_source_columns)
    out = Path(out or Path("tinyaug-out") / f"{(table.task.name if table.task else Path(input_path).stem)}-aug").resolve()
    # With Ray, the models here only name the run (the actors load their own, on their devices).
    loaded_mlm, loaded_vectors = _load_models(mlm, vectors, vectors_format, trust_pickle,
                                              "cpu" if settings else device, precision)
    click.echo(f"Input: {table.source} ({len(table.dataset)} rows, text columns: {', '.join(table.text_columns)})", err=True)
    if table.skipped:
        click.echo(f"Skipped {len(table.skipped)} bad rows (first: {table.skipped[0]})", err=True)
    click.echo(f"Masked LM: {loaded_mlm.identifier}; vectors: {loaded_vectors.identifier}", err=True)
    options = BuildOptions(batch_size=batch_size, shard_size=shard_size, overwrite=overwrite,
                           engine=_ray_engine(settings, mlm, vectors, vectors_format, trust_pickle, precision))
    with click.progressbar(length=len(table.dataset), label="Augmenting", file=click.get_text_stream("stderr"),
                           show_pos=True) as bar:
        report = augment_table(table, out, recipe, loaded_mlm, loaded_vectors, options, progress=bar.update,
                               notify=lambda message: click.echo(message, err=True))
    if report.already_complete:
        click.echo(f"{out} is already complete with these arguments ({report.rows_out} rows); nothing to do.")
        return
    stats = report.stats
    click.echo(f"Wrote {report.rows_out} rows from {report.rows_in} to {out} "
               f"(replacement rate {100 * stats.replacement_rate:.1f}%, "
               f"{sum(stats.no_candidates.values())} of {stats.eligible_words} eligible words had no candidates; "
               f"card: {out / 'README.md'})")
    if show:
        from tinyaug.pipelines.augmentation.inspect import first_examples, label_text

        for rows in first_examples(load_augmented(out), show):
            click.echo(click.style(f"\nexample {rows[0]['aug_example_id']}: {len(rows)} rows", bold=True))
            for row in rows.select(range(min(4, len(rows)))):
                label = label_text(rows, row)
                click.echo(f" variant {row['aug_variant']}" + (f" (label: {label})" if label is not None else "") + ":")
                for line in describe_row(row, list(table.text_columns)):
                    click.echo(line)


@click.command("inspect")
@click.argument("target")
@model_options
@click.option("-n", "--variants", "n", type=click.IntRange(min=0), default=5, show_default=True,
              help="Variants to sample (sentence mode).")
@click.option("--example", "example_id", type=int, help="Dataset mode: show only this source example.")
@click.option("--no-pager", is_flag=True, help="Dataset mode: print instead of paging.")
@friendly_errors
def inspect_command(target, mlm, vectors, vectors_format, trust_pickle, k, p, seed, min_similarity,
                    exclude_antonyms, context, max_length,
                    batch_size, device, precision, n, example_id, no_pager):
    """Show how a sentence is augmented, or page through an augmented dataset.

    With a sentence: each word, its route (masked LM or vectors), its candidates with source and
    score, and a few sampled variants with the changed words highlighted. With a dataset folder:
    each variant's changes against its original.

    Example: tinyaug inspect "the movie was a charming surprise ."

    Example: tinyaug inspect tinyaug-out/sst2-aug --example 3
    """
    if not target.strip():
        raise click.BadParameter("give a sentence to inspect, or an augmented dataset's folder", param_hint="TARGET")
    if len(target) > MAX_SENTENCE_CHARS:
        raise click.BadParameter(f"a sentence of {len(target):,} characters; inspect takes up to "
                                 f"{MAX_SENTENCE_CHARS:,} (augment a file of long texts instead)", param_hint="TARGET")
    looks_like_path = not any(ch.isspace() for ch in target) and len(target) < 4096
    if looks_like_path and Path(target).is_dir():
        _inspect_dataset(Path(target), example_id, no_pager)
        return
    if looks_like_path and ("/" in target or Path(target).exists()):
        raise TinyaugError(f"{target}: no such dataset folder (to inspect a one-word sentence, add a space)")
    from tinyaug.pipelines.augmentation.shards import build_augmenter
    from tinyaug.pipelines.augmentation.inspect import inspect_sentence, variant_changes

    recipe = Recipe(variants_per_example=n, candidates_per_word=k, replace_prob=p, seed=seed,
                    mlm_context=context, max_length=max_length, min_similarity=min_similarity,
                    exclude_antonyms=exclude_antonyms)
    # With Ray, the models here only name the run (the actors load their own, on their devices).
    loaded_mlm, loaded_vectors = _load_models(mlm, vectors, vectors_format, trust_pickle, device, precision)
    report = inspect_sentence(build_augmenter(recipe, loaded_mlm, loaded_vectors, batch_size), target)
    plan = report.plan
    click.echo(f"masked LM: {loaded_mlm.identifier}; vectors: {loaded_vectors.identifier}\n")
    for w, word in enumerate(plan.words):
        route = plan.routes[w]
        if route is None:
            click.echo(click.style(f"{word.text:>16}  -", dim=True))
            continue
        cands = plan.candidates[w]
        listing = ", ".join(f"{c.word} {c.score:.2f}" for c in cands) if cands else \
            click.style(f"no candidates ({plan.missing.get(w, '')})", fg="yellow")
        click.echo(f"{click.style(f'{word.text:>16}', bold=True)}  {route:<7} {listing}")
    click.echo(click.style(f"\n{len(report.variants) - 1} distinct variants (seed {seed}):", bold=True))
    for variant in report.variants[1:]:
        click.echo("  " + highlighted(variant.texts[0], variant_changes(variant), "text"))


def _inspect_dataset(path: Path, example_id: int | None, no_pager: bool) -> None:
    from tinyaug.pipelines.augmentation.build import load_augmented
    from tinyaug.pipelines.augmentation.inspect import describe, example_rows, label_text, teacher_text, text_columns

    ds = load_augmented(path)
    columns = text_columns(ds)
    header = describe(path, ds)
    if example_id is not None:
        ds = example_rows(ds, example_id)

    def pages():
        yield header + "\n"
        for row in ds:
            head = click.style(f"example {row['aug_example_id']} variant {row['aug_variant']}", bold=True)
            label, teacher = label_text(ds, row), teacher_text(ds, row)
            head += f"  label: {label}" if label is not None else ""
            head += f"  teacher: {teacher}" if teacher is not None else ""
            yield "\n" + head + "\n"
            yield "\n".join(describe_row(row, columns)) + "\n"

    if no_pager:
        for chunk in pages():
            click.echo(chunk, nl=False)
    else:
        click.echo_via_pager(pages())


@click.command("export")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(export_formats.FORMATS), default="tsv", show_default=True,
              help="tsv: the GLUE file layout; parquet, jsonl: every column; csv, json: run_glue.py's "
                   "--train_file layout (text columns and label; .json is JSON Lines).")
@click.option("--to", "to", type=click.Path(), help="Output file, or a folder for train_aug.<ext> "
              "[default: train_aug.<ext> inside DATASET's parent folder].")
@click.option("--provenance/--no-provenance", default=None,
              help="Keep the aug_ columns [default: yes for parquet and jsonl, no for csv and json; "
                   "never in tsv].")
@click.option("--labels", type=click.Choice(["gold", "teacher"]), default="gold", show_default=True,
              help="Each variant's label: the original's, copied (gold), or the teacher's prediction "
                   "(after tinyaug teacher-logits).")
@click.option("--replace-breaks", is_flag=True, help="TSV: write tabs and line breaks inside fields as spaces "
              "(counted) instead of failing.")
@friendly_errors
def export_command(dataset, fmt, to, provenance, labels, replace_breaks):
    """Export an augmented dataset for GLUE readers, run_glue.py, pandas or any Arrow tool.

    Example: tinyaug export tinyaug-out/sst2-aug --format tsv --to glue_data/SST-2/

    Example: tinyaug export tinyaug-out/mrpc-aug --format csv --to train_aug.csv
    """
    from tinyaug.pipelines.augmentation.build import load_augmented
    from tinyaug.pipelines.augmentation.export import export

    ds = load_augmented(Path(dataset))
    report = export(ds, fmt, to or Path(dataset).parent / export_formats.DEFAULT_NAMES[fmt], replace_breaks=replace_breaks,
                    provenance=provenance, labels=labels)
    extra = f"; {report.fields_with_breaks_replaced} fields had tabs/line breaks replaced by spaces" \
        if report.fields_with_breaks_replaced else ""
    if report.columns_left_empty:
        extra += f"; columns the data lacks, written empty: {', '.join(report.columns_left_empty)}"
    click.echo(f"Wrote {report.rows} rows ({', '.join(report.columns)}) to {report.path}{extra}")


@click.command("filter")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
@click.option("--keep", default="agreeing", show_default=True,
              help="Variants to keep: all, agreeing (the teacher's prediction equals its prediction on the "
                   "original), confident:P (the teacher's probability >= P), or agreeing+confident:P. "
                   "Originals always stay.")
@click.option("--labels", type=click.Choice(["gold", "teacher"]), default="gold", show_default=True,
              help="The kept variants' label: the original's (gold) or the teacher's prediction.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The filtered dataset's folder "
              "(DATASET stays as it is).")
@click.option("--overwrite", is_flag=True, help="Replace --out if it is a dataset.")
@friendly_errors
def filter_command(dataset, keep, labels, out, overwrite):
    """Keep the variants the teacher agrees with (or is confident about) in a new dataset.

    DATASET must carry the teacher's predictions (tinyaug teacher-logits). The new dataset's
    metadata and card record the policy and how many rows each rule dropped.

    Example: tinyaug filter runs/sst2-aug --keep agreeing --out runs/sst2-agreeing
    """
    from tinyaug.distill.variants import LabelPolicy
    from tinyaug.pipelines.augmentation.filter import filter_dataset

    report = filter_dataset(dataset, out, LabelPolicy.parse(keep, labels), overwrite=overwrite)
    dropped = "; ".join(f"{reason}: {count}" for reason, count in report["dropped"].items()) or "nothing dropped"
    relabelled = f"; {report['relabelled']} variants relabelled by the teacher" if labels == "teacher" else ""
    click.echo(f"Kept {report['rows_out']} of {report['rows_in']} rows ({dropped}{relabelled}) in {report['out']}")


COMMANDS = [augment_command, inspect_command, export_command, filter_command]
