"""The augmentation commands: ``augment``, ``inspect`` and ``export``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tinyaug.augment.recipe import PAIR_MODES, REFERENCE_VARIANTS, Recipe
from tinyaug.errors import TinyaugError
from tinyaug.pipelines.augmentation import formats as export_formats
from tinyaug.pipelines.cli.common import (engine_options, friendly_errors, glue_data_dir, model_options, ray_settings, start_up,
                                         task_option)
from tinyaug.pipelines.cli.progress import Progress
from tinyaug.tasks import get_task


MAX_SENTENCE_CHARS = 10_000  # inspect's sentence mode: far beyond any model's window, far below a flood


def _model_spec(mlm: str, vectors: str, vectors_format: str, trust_pickle: bool, precision: str, backend: str) -> Any:
    from tinyaug.pipelines.augmentation.methods import ModelSpec

    return ModelSpec(mlm, vectors, vectors_format, trust_pickle, precision, backend)


def highlighted(text: str, changes: list[dict[str, Any]], column: str) -> str:
    """The variant text with its replaced words in bold green."""
    from tinyaug.pipelines.augmentation.inspect import change_segments

    return "".join(click.style(piece, fg="green", bold=True) if change else piece
                   for piece, change in change_segments(text, changes, column))


RANK_LEGEND = "changes: word->replacement (source #rank); #1 = the source's top candidate"


def describe_row(row: dict[str, Any], text_columns: list[str]) -> list[str]:
    """A row's texts, edited words highlighted, and its edits with 1-based ranks (stored 0-based)."""
    from tinyaug.pipelines.augmentation.inspect import describe_change

    lines = [f"  {column}: {highlighted(row[column], row['aug_changes'], column)}" for column in text_columns]
    if row["aug_changes"]:
        edits = ", ".join(describe_change(c) for c in row["aug_changes"])
        lines.append(click.style(f"    changes: {edits}", dim=True))
    return lines


def _executor(settings: Any) -> Any:
    """The executor ``--engine`` names (``pipelines.scale``)."""
    from tinyaug.pipelines.scale.ray_executor import executor_for

    def started(actors: list[dict]) -> None:
        click.echo(f"Ray: {len(actors)} actors loaded the models", err=True)

    return executor_for(settings, on_start=started)


@click.command("augment")
@task_option(required=False)
@click.option("--data-dir", type=click.Path(file_okay=False), callback=glue_data_dir,
              help="GLUE data folder (holds SST-2/train.tsv, ...); 'sample': the rows the package ships. "
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
@click.option("--method", default="tinybert", show_default=True,
              help="tinybert (masked LM + vectors), synonyms (WordNet), eda (eda:swap=0.2,delete for some "
                   "operations), random (the control), or several joined by + (tinybert+eda:swap).")
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
                    backend, masks_per_context, method, n, reference_n, pair_mode, limit, shard_size, engine, ray_address, actors, cpus_per_actor,
                    gpus_per_actor, worker, skip_bad_rows, overwrite, show):
    """Augment a GLUE task or a table TinyBERT-style into an Arrow dataset.

    Example: tinyaug augment --task sst2 --limit 100 --out runs/sst2-aug
    """
    from tinyaug.pipelines.augmentation.preflight import augment_inputs, augment_request, claim_out
    from tinyaug.pipelines.io.tables import load_input

    if worker is not None:
        raise click.UsageError("--worker I/N was removed: run the shards on Ray instead, with --engine ray "
                               "(one actor per GPU: --gpus-per-actor 1; README, 'Scale-out on Ray')")
    settings = ray_settings(engine, ray_address, actors, cpus_per_actor, gpus_per_actor, backend)
    if reference_n:
        if not task:
            raise click.UsageError("--reference-n needs --task")
        n = REFERENCE_VARIANTS[get_task(task).name]
    with start_up():  # imports PyTorch
        from tinyaug.augment.methods import method_name, parse_method
        from tinyaug.pipelines.augmentation.methods import check_resources

    recipe = Recipe(variants_per_example=n, candidates_per_word=k, replace_prob=p, seed=seed,
                    mlm_context=context, pair_mode=pair_mode, max_length=max_length,
                    min_similarity=min_similarity, exclude_antonyms=exclude_antonyms,
                    method=method_name(parse_method(method)), masks_per_context=masks_per_context)
    check_resources(recipe)
    columns = tuple(c.strip() for c in text_columns.split(",")) if text_columns else ()
    load = dict(task=task, data_dir=data_dir, input_path=input_path, split=split, text_columns=columns,
                label_column=label_column, skip_bad_rows=skip_bad_rows, limit=limit, from_hub=from_hub,
                keep_source_columns=keep_source_columns)
    if not task and not input_path:
        load_input(**load)  # says what to give
    glue_input = task is not None and (input_path is None or Path(input_path).suffix == ".tsv")
    out = Path(out or Path("tinyaug-out") / f"{get_task(task).name if glue_input else Path(input_path).stem}-aug")
    request = augment_request(load, recipe=recipe, shard_size=shard_size, precision=precision, backend=backend,
                              batch_size=batch_size,
                              mlm=mlm, vectors=vectors, vectors_format=vectors_format)
    inputs = augment_inputs(load, mlm, vectors)
    with claim_out(out, inputs=inputs, overwrite=overwrite, request=request) as (out, finished):
        if finished is not None:
            click.echo(f"{out} is already complete with these arguments ({finished.rows_out} rows); nothing to do.")
            return
        from tinyaug.pipelines.augmentation.build import AugmentJob, BuildOptions, run

        executor = _executor(settings)
        options = BuildOptions(batch_size=batch_size, shard_size=shard_size, overwrite=overwrite, request=request)
        # On Ray, the models loaded here only name the run (the actors load their own, on their devices).
        with start_up():
            job = AugmentJob.load(load, out, recipe, _model_spec(mlm, vectors, vectors_format, trust_pickle, precision,
                                                                 backend), "cpu" if executor.remote else device, options)
        _describe(job)
        total = len(job.table.dataset)
        with Progress(every=shard_size) as progress:  # in a log: a line per shard
            report = run(job, executor, progress=lambda rows: progress.advance("Augmenting", rows, total),
                         notify=lambda message: click.echo(message, err=True))
        _report(report, list(job.table.text_columns), show)


def _describe(job: Any) -> None:
    """What the job reads and how: its input and its method with the models it loaded."""
    table = job.table
    click.echo(f"Input: {table.source} ({len(table.dataset)} rows, text columns: {', '.join(table.text_columns)})", err=True)
    if table.skipped:
        click.echo(f"Skipped {len(table.skipped)} bad rows (first: {table.skipped[0]})", err=True)
    models = "; ".join(f"{k}: {v}" for k, v in job.models.identifiers().items())
    click.echo(f"Method: {job.recipe.method}" + (f"; {models}" if models else ""), err=True)


def _report(report: Any, text_columns: list[str], show: int) -> None:
    """What the run wrote, and the first ``show`` examples' rows."""
    from tinyaug.pipelines.augmentation.build import load_augmented

    out = report.out_dir
    if report.already_complete:
        click.echo(f"{out} is already complete with these arguments ({report.rows_out} rows); nothing to do.")
        return
    stats = report.stats
    click.echo(f"Wrote {report.rows_out} rows from {report.rows_in} to {out} "
               f"(edit rate {100 * stats.replacement_rate:.1f}%, "
               f"{sum(stats.no_candidates.values())} of {stats.eligible_words} eligible words had no candidates; "
               f"card: {out / 'README.md'})")
    if show:
        from tinyaug.pipelines.augmentation.inspect import first_examples, label_text

        click.echo(click.style(RANK_LEGEND, dim=True))
        for rows in first_examples(load_augmented(out), show):
            click.echo(click.style(f"\nexample {rows[0]['aug_example_id']}: {len(rows)} rows", bold=True))
            for row in rows.select(range(min(4, len(rows)))):
                label = label_text(rows, row)
                click.echo(f" variant {row['aug_variant']}" + (f" (label: {label})" if label is not None else "") + ":")
                for line in describe_row(row, text_columns):
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
                    batch_size, device, precision, backend, masks_per_context, n, example_id, no_pager):
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
    from tinyaug.pipelines.augmentation.methods import build_augmenter
    from tinyaug.pipelines.augmentation.inspect import inspect_sentence, variant_changes

    recipe = Recipe(variants_per_example=n, candidates_per_word=k, replace_prob=p, seed=seed,
                    mlm_context=context, max_length=max_length, min_similarity=min_similarity,
                    exclude_antonyms=exclude_antonyms, masks_per_context=masks_per_context)
    from tinyaug.pipelines.augmentation.methods import load_models

    models = load_models(_model_spec(mlm, vectors, vectors_format, trust_pickle, precision, backend), device, {"mlm", "vectors"})
    loaded_mlm, loaded_vectors = models.mlm, models.vectors
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
    from tinyaug.pipelines.augmentation.inspect import (describe, example_rows, label_text, open_augmented,
                                                        teacher_text, text_columns)

    ds = open_augmented(path)
    columns = text_columns(ds)
    header = describe(path, ds)
    if example_id is not None:
        ds = example_rows(ds, example_id)

    def pages():
        yield header + "\n" + click.style(RANK_LEGEND, dim=True) + "\n"
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
@click.option("--format", "fmt", type=click.Choice([*export_formats.FORMATS, *export_formats.FOLDER_FORMATS]),
              default="tsv", show_default=True,
              help="tsv: the GLUE file layout; parquet, jsonl: every column; csv, json: run_glue.py's "
                   "--train_file layout (text columns and label; .json is JSON Lines); hub: a folder that "
                   "datasets.load_dataset(FOLDER) loads and the Hub publishes (Parquet and a README card).")
@click.option("--validation", type=click.Path(exists=True, file_okay=False),
              help="--format hub: a dataset folder (same columns) to add as the validation split.")
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
@click.option("--overwrite", is_flag=True, help="Replace the target if it is an earlier export (a file with the "
              "format's suffix that is no GLUE data file).")
@friendly_errors
def export_command(dataset, fmt, validation, to, provenance, labels, replace_breaks, overwrite):
    """Export an augmented dataset for GLUE readers, run_glue.py, pandas or any Arrow tool.

    Example: tinyaug export tinyaug-out/sst2-aug --format tsv --to glue_data/SST-2/

    Example: tinyaug export tinyaug-out/mrpc-aug --format csv --to train_aug.csv

    Example: tinyaug export tinyaug-out/sst2-aug --format hub --to sst2-aug-hub
    """
    if fmt in export_formats.FOLDER_FORMATS or validation:
        return _export_hub(dataset, fmt, validation, to, provenance, labels, overwrite)
    from tinyaug.pipelines.augmentation.build import load_augmented
    from tinyaug.pipelines.augmentation.export import export, export_target

    default = Path(dataset).resolve().parent / export_formats.DEFAULT_NAMES[fmt]  # beside DATASET, even for "."
    target = export_target(fmt, to or default, dataset=dataset, overwrite=overwrite)  # checked before reading DATASET
    ds = load_augmented(Path(dataset))
    report = export(ds, fmt, target, replace_breaks=replace_breaks, provenance=provenance, labels=labels,
                    overwrite=overwrite)
    extra = f"; {report.fields_with_breaks_replaced} fields had tabs/line breaks replaced by spaces" \
        if report.fields_with_breaks_replaced else ""
    if report.columns_left_empty:
        extra += f"; columns the data lacks, written empty: {', '.join(report.columns_left_empty)}"
    click.echo(f"Wrote {report.rows} rows ({', '.join(report.columns)}) to {report.path}{extra}")


def _export_hub(dataset: str, fmt: str, validation: str | None, to: str | None, provenance: bool | None,
                labels: str, overwrite: bool) -> None:
    if fmt not in export_formats.FOLDER_FORMATS or labels != "gold":
        raise click.UsageError("--validation goes with --format hub" if fmt != "hub" else
                               "--format hub writes the dataset's own labels: export --labels teacher to a file format")
    write = export_formats.EXPORT_FORMATS[fmt].load_writer()  # hub.export_hub_folders
    report = write(dataset, to, validation=validation, provenance=provenance, overwrite=overwrite)
    click.echo(f"Wrote a Hub dataset folder ({', '.join(f'{k} {v}' for k, v in report.rows.items())} rows; "
               f"{', '.join(report.columns)}) to {report.path}; load it with datasets.load_dataset({str(report.path)!r})")


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
