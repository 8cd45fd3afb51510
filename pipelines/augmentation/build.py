"""The dataset builder: an ``InputTable`` in, an augmented Arrow dataset out, resumable.

Work happens in shards of ``shard_size`` examples, in a work folder ``OUT.partial`` beside the
output. Each shard is written to a temporary folder and renamed into place, so a shard either
exists whole or not at all; a run killed at any moment and started again with the same
arguments skips the shards that exist and ends with exactly the rows of an uninterrupted run
(every example draws from its own generator). When all shards exist they are joined, the
dataset card is written, and the result is renamed to ``OUT``; ``OUT`` never holds a partial
dataset. Where the shards are built is the engine's business: this process (``LocalEngine``) or
a Ray cluster (``pipelines.scale``); either way they come back here and only this process writes,
so one lock on ``OUT`` covers the whole run and no two writers can race.

Output columns: the input's columns (text columns rewritten), plus provenance:
``aug_example_id`` (source row), ``aug_variant`` (0 = the original) and ``aug_changes``
(one record per replaced word: column, word index, character span in the original text,
original and replacement as written, source and candidate rank). The recipe, the model and
vector identifiers and the statistics are in the dataset's metadata (``info.description``, a
JSON document) and in the dataset card ``README.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import datasets
import pyarrow as pa

from tinyaug import __version__
from tinyaug.augment.engine import Stats
from tinyaug.augment.methods import Method
from tinyaug.augment.recipe import Recipe
from tinyaug.errors import InputError, TinyaugError
from tinyaug.pipelines.augmentation.assemble import assemble
from tinyaug.pipelines.augmentation.methods import MethodModels, build_method, models_needed
from tinyaug.pipelines.augmentation.shards import (ShardJob, augment_shard, read_shard_stats, shard_jobs, shard_problem,
                                                   write_shard)
from tinyaug.pipelines.io.interrupts import check_interrupted
from tinyaug.pipelines.io.models import LoadedMLM
from tinyaug.pipelines.io.outputs import TINYAUG_DATASET, check_inputs, check_output, is_tinyaug_dataset, output_lock
from tinyaug.pipelines.io.schema import augmented_features, read_metadata
from tinyaug.pipelines.io.storage import arrow_stream_rows, clear_stale, data_files_problem, remove_tree, write_json
from tinyaug.pipelines.io.tables import InputTable
from tinyaug.pipelines.io.vectors import LoadedVectors

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class BuildOptions:
    """How to run (none of these change the rows in fp32; in reduced precision a context's scores
    depend on its batch, so ``batch_size`` and ``examples_per_batch`` join the resume key)."""

    batch_size: int = 64  # masked contexts per model forward
    examples_per_batch: int = 256  # examples planned together (candidate look-ups are batched across them)
    shard_size: int = 1000  # examples per shard (the unit of resume)
    overwrite: bool = False
    engine: "ShardEngine | None" = None  # None: this process builds every shard (the local engine)
    request: dict | None = None  # the command's arguments and input identities (``preflight``), kept in the metadata
    method: Method | None = None  # a method object built by the caller (local engine); None: built from recipe.method


@dataclasses.dataclass(frozen=True)
class ShardWork:
    """What an engine needs to build shards: the recipe, the models loaded in this process (their
    identifiers are what every shard must be built with) and the output schema."""

    recipe: Recipe
    mlm: LoadedMLM | None  # None where the method needs no masked LM (``methods.models_needed``)
    vectors: LoadedVectors | None
    text_columns: tuple[str, ...]
    features: datasets.Features
    batch_size: int
    examples_per_batch: int


class ShardEngine(Protocol):
    """Builds shards somewhere and hands back their rows as each one completes, in any order."""

    def augment(self, work: ShardWork, jobs: list[ShardJob], source: Callable[[ShardJob], pa.Table],
                progress: Callable[[int], None] | None) -> Iterator[tuple[ShardJob, pa.Table, Stats]]: ...


class LocalEngine:
    """Every shard in this process, one after another, with one method: ``method`` (one the caller
    built, say a method of their own), else the one ``recipe.method`` names."""

    def __init__(self, method: Method | None = None) -> None:
        self.augmenter: Method | None = method

    def augment(self, work: ShardWork, jobs: list[ShardJob], source: Callable[[ShardJob], pa.Table],
                progress: Callable[[int], None] | None) -> Iterator[tuple[ShardJob, pa.Table, Stats]]:
        for job in jobs:
            self.augmenter = self.augmenter or build_method(work.recipe, MethodModels(work.mlm, work.vectors),
                                                            work.batch_size)
            table, stats = augment_shard(source(job), work.text_columns, self.augmenter, work.features,
                                         work.examples_per_batch, progress)
            yield job, table, stats


@dataclasses.dataclass
class BuildReport:
    out_dir: Path
    rows_in: int
    rows_out: int
    shards_total: int
    shards_resumed: int
    stats: Stats
    skipped: list[str]
    metadata: dict[str, Any]
    augmenter: Method | None = None  # the local engine's method (its timings and model counters), if it ran; None on Ray
    already_complete: bool = False  # OUT already held this run's result: nothing was done


def _run_key(table: InputTable, recipe: Recipe, mlm: LoadedMLM | None, vectors: LoadedVectors | None,
             options: BuildOptions) -> dict:
    """Everything that decides the rows; a resumed run must match it (the engine does not)."""
    key = {"tinyaug": __version__, "input": table.fingerprint, "rows": len(table.dataset),
           "text_columns": list(table.text_columns), "columns": list(table.dataset.column_names),
           "recipe": recipe.to_dict(),
           **MethodModels(mlm, vectors).identifiers(), "shard_size": options.shard_size}
    if mlm is not None and mlm.precision != "fp32":  # rounding then depends on which contexts share a forward
        key.update(batch_size=options.batch_size, examples_per_batch=options.examples_per_batch)
    return key


def augment_table(table: InputTable, out_dir: str | Path, recipe: Recipe, mlm: LoadedMLM | None,
                  vectors: LoadedVectors | None, options: BuildOptions = BuildOptions(),
                  progress: Callable[[int], None] | None = None,
                  notify: Callable[[str], None] | None = None) -> BuildReport:
    """Augment every row of ``table`` into ``out_dir`` (see the module docstring). ``notify``
    hears, at the start, how many shards an interrupted run already built."""
    datasets.disable_progress_bars()
    out_dir = Path(out_dir).resolve()
    if options.shard_size < 1 or options.batch_size < 1 or options.examples_per_batch < 1:
        raise TinyaugError("shard size, batch size and examples per batch must be at least 1")
    total = len(table.dataset)
    if total == 0:
        raise InputError(f"{table.source}: no rows to augment")
    if options.method is None:  # only the models the method uses name the run (and reach the engine)
        needed = models_needed(recipe)
        mlm, vectors = (mlm if "mlm" in needed else None), (vectors if "vectors" in needed else None)
    key = _run_key(table, recipe, mlm, vectors, options)
    work = out_dir.with_name(out_dir.name + ".partial")
    check_inputs(out_dir, [("--input", table.source)])  # a hub source is no path: skipped
    if out_dir.exists() and not options.overwrite:
        finished = _finished_report(out_dir, key, work)
        if finished is not None:
            return finished  # done earlier: a rerun (perhaps after a kill during clean-up) changes nothing
    check_output(out_dir, command="augment", what=TINYAUG_DATASET, overwrite=options.overwrite,
                 replaceable=is_tinyaug_dataset)
    with _run_lock(work, out_dir):
        _open_work(work, key)
        return _build(table, work, out_dir, key, recipe, mlm, vectors, options, progress, notify)


def _run_lock(work: Path, out_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Hold ``OUT.partial/run.lock`` for the whole run: a second run on the same ``OUT`` stops at
    once with one line instead of racing this one (the lock goes with the process if it dies; the
    command takes it before loading anything, ``preflight``)."""
    return output_lock(work / "run.lock", f"another tinyaug run is writing {out_dir} right now; wait for it to "
                                          "finish (then rerun to find it complete), or choose another --out")


def _build(table: InputTable, work: Path, out_dir: Path, key: dict, recipe: Recipe, mlm: LoadedMLM,
           vectors: LoadedVectors, options: BuildOptions, progress: Callable[[int], None] | None,
           notify: Callable[[str], None] | None) -> BuildReport:
    """Build the missing shards (on the engine), write each as it arrives, then assemble."""
    total = len(table.dataset)
    shards_dir = work / "shards"
    jobs = shard_jobs(total, options.shard_size)
    _drop_damaged(shards_dir, jobs, notify)
    missing = [job for job in jobs if not (shards_dir / job.name).exists()]
    resumed = len(jobs) - len(missing)
    if resumed and notify is not None:
        notify(f"Resuming: {resumed} of {len(jobs)} shards were already built")
    if progress and resumed:
        progress(total - sum(job.stop - job.start for job in missing))
    features = augmented_features(table.dataset.features)
    shard_work = ShardWork(recipe, mlm, vectors, tuple(table.text_columns), features,
                           options.batch_size, options.examples_per_batch)
    if options.method is not None and options.engine is not None:
        raise TinyaugError("a method object runs on the local engine only; give the Ray engine a method by name")
    engine = options.engine or LocalEngine(options.method)
    arrow = table.dataset.with_format("arrow")
    for job, rows, stats in engine.augment(shard_work, missing, lambda job: arrow[job.start:job.stop], progress):
        written = write_shard(rows, features, shards_dir / job.name, stats)
        logger.info("wrote shard %d/%d (%d rows)", job.index + 1, len(jobs), written)
        check_interrupted()  # an interrupt a library swallowed stops here, the shard saved

    done = [shards_dir / job.name for job in jobs]
    stats = Stats()
    for shard_path in done:
        stats.add(read_shard_stats(shard_path))
    metadata = {
        "tinyaug_version": __version__, "recipe": recipe.to_dict(), "input": table.source,
        "task": table.task.name if table.task else None, "text_columns": list(table.text_columns),
        "label_column": table.label_column, "method": recipe.method, **MethodModels(mlm, vectors).identifiers(),
        "mlm_starter": mlm.starter if mlm is not None else None, "shard_size": options.shard_size,
        "skipped_rows": [str(b) for b in table.skipped], "stats": stats.to_dict(),
        "rows_in": total, "rows_out": stats.rows_out, "run_key": key,
        **({"request": options.request} if options.request else {}),
    }
    clear_stale(out_dir)
    assemble(done, out_dir, metadata)
    remove_tree(work)
    return BuildReport(out_dir, total, stats.rows_out, len(jobs), resumed, stats, metadata["skipped_rows"], metadata,
                       getattr(engine, "augmenter", None))


def _drop_damaged(shards_dir: Path, jobs: list[ShardJob], notify: Callable[[str], None] | None) -> None:
    """Remove the built shards that are damaged (cut short by a power loss or a full disk, a file
    missing), each named in one line, so that this run builds them again."""
    for job in jobs:
        shard = shards_dir / job.name
        if not shard.exists() and not shard.is_symlink():
            continue
        problem = shard_problem(shard)
        if problem is None:
            continue
        (notify or logger.warning)(f"shard {shard} is damaged ({problem}): building it again")
        if shard.is_dir() and not shard.is_symlink():
            remove_tree(shard)
        else:
            shard.unlink()


def _open_work(work: Path, key: dict) -> None:
    """Create the work folder with its run key, or check that an interrupted run's key matches."""
    run_file = work / "run.json"
    if run_file.is_file():
        try:
            previous = json.loads(run_file.read_text())
        except json.JSONDecodeError as exc:
            raise TinyaugError(f"{run_file} is unreadable; delete {work} to start over") from exc
        if previous != key:
            changed = sorted(k for k in key if previous.get(k) != key[k])
            raise TinyaugError(f"{work} holds an interrupted run with other arguments ({', '.join(changed)} differ); "
                               f"rerun with the same arguments to resume, or delete {work} to start over")
        return
    (work / "shards").mkdir(parents=True, exist_ok=True)
    write_json(run_file, key)


def _finished_report(out_dir: Path, key: dict, work: Path) -> BuildReport | None:
    """The report of a complete earlier run with the same key in ``out_dir``, or None."""
    if not (out_dir / "state.json").is_file():
        return None
    ds = _load_whole(out_dir, key)
    if ds is None:  # not tinyaug's: the output check refuses it
        return None
    metadata = read_metadata(ds)
    if metadata.get("run_key") != key:
        return None
    if work.exists():
        remove_tree(work)
    clear_stale(work)  # a kill during the clean-up left .OUT.partial.trash-N behind
    clear_stale(out_dir)
    stats = Stats.from_dict(metadata["stats"])
    n_shards = -(-metadata["rows_in"] // metadata["shard_size"])
    return BuildReport(out_dir, metadata["rows_in"], metadata["rows_out"], n_shards, n_shards,
                       stats, metadata["skipped_rows"], metadata, already_complete=True)


def _load_whole(out_dir: Path, key: dict) -> datasets.Dataset | None:
    """The finished dataset in ``out_dir``, checked whole (its files match ``state.json``, none is
    cut short, and a result of this run has the rows its metadata records); None if it is not
    tinyaug's. A damaged one is refused in one line that says ``--overwrite`` rebuilds it."""
    if not is_tinyaug_dataset(out_dir):
        return None
    problem = data_files_problem(out_dir)
    if problem is None:
        try:
            state = json.loads((out_dir / "state.json").read_text(encoding="utf-8"))
            rows = sum(arrow_stream_rows(out_dir / entry["filename"]) for entry in state["_data_files"])
            ds = datasets.load_from_disk(str(out_dir))
            metadata = read_metadata(ds)
            if metadata.get("run_key") == key and rows != metadata.get("rows_out"):
                problem = f"{rows} rows where its metadata records {metadata.get('rows_out')}"
        except (ValueError, OSError, pa.ArrowException) as exc:
            problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if problem is not None:
        raise TinyaugError(f"{out_dir} is damaged ({problem}); pass --overwrite to rebuild it with this command")
    return ds


def load_augmented(path: str | Path) -> datasets.Dataset:
    """Load an augmented dataset folder, with a clear error if it is not one."""
    path = Path(path)
    if not (path / "state.json").is_file():
        partial = path.resolve().with_name(path.resolve().name + ".partial")
        hint = f"; {partial} holds an unfinished run: rerun the same augment command to finish it" if partial.exists() else ""
        what = "not a dataset written by tinyaug augment (no state.json)" if path.exists() else \
            "does not exist; pass the folder `tinyaug augment --out` wrote"
        raise InputError(f"{path}: {what}{hint}")
    problem = data_files_problem(path)
    if problem is not None:
        raise InputError(f"{path}: the dataset's files do not match its state.json ({problem}); rebuild it with "
                         "the augment command that made it (--overwrite)")
    try:
        return datasets.load_from_disk(str(path))
    except (ValueError, OSError, pa.ArrowException) as exc:  # a truncated or damaged Arrow file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: the dataset's files are damaged or incomplete ({first}); rebuild it with "
                         "the augment command that made it (--overwrite)") from None
