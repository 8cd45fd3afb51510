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
from tinyaug.augment.engine import Augmenter, Stats
from tinyaug.augment.recipe import Recipe
from tinyaug.errors import InputError, TinyaugError
from tinyaug.pipelines.augmentation.assemble import assemble
from tinyaug.pipelines.augmentation.shards import (ShardJob, augment_shard, build_augmenter, read_shard_stats,
                                                   shard_jobs, write_shard)
from tinyaug.pipelines.io.models import LoadedMLM
from tinyaug.pipelines.io.schema import augmented_features, read_metadata
from tinyaug.pipelines.io.storage import clear_stale, remove_tree, write_json
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


@dataclasses.dataclass(frozen=True)
class ShardWork:
    """What an engine needs to build shards: the recipe, the models loaded in this process (their
    identifiers are what every shard must be built with) and the output schema."""

    recipe: Recipe
    mlm: LoadedMLM
    vectors: LoadedVectors
    text_columns: tuple[str, ...]
    features: datasets.Features
    batch_size: int
    examples_per_batch: int


class ShardEngine(Protocol):
    """Builds shards somewhere and hands back their rows as each one completes, in any order."""

    def augment(self, work: ShardWork, jobs: list[ShardJob], source: Callable[[ShardJob], pa.Table],
                progress: Callable[[int], None] | None) -> Iterator[tuple[ShardJob, pa.Table, Stats]]: ...


class LocalEngine:
    """Every shard in this process, one after another, with one ``Augmenter``."""

    def __init__(self) -> None:
        self.augmenter: Augmenter | None = None

    def augment(self, work: ShardWork, jobs: list[ShardJob], source: Callable[[ShardJob], pa.Table],
                progress: Callable[[int], None] | None) -> Iterator[tuple[ShardJob, pa.Table, Stats]]:
        for job in jobs:
            self.augmenter = self.augmenter or build_augmenter(work.recipe, work.mlm, work.vectors, work.batch_size)
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
    augmenter: Augmenter | None = None  # the local engine's (its timings and model counters), if it ran; None on Ray
    already_complete: bool = False  # OUT already held this run's result: nothing was done


def _run_key(table: InputTable, recipe: Recipe, mlm: LoadedMLM, vectors: LoadedVectors, options: BuildOptions) -> dict:
    """Everything that decides the rows; a resumed run must match it (the engine does not)."""
    key = {"tinyaug": __version__, "input": table.fingerprint, "rows": len(table.dataset),
           "text_columns": list(table.text_columns), "columns": list(table.dataset.column_names),
           "recipe": recipe.to_dict(),
           "mlm": mlm.identifier, "vectors": vectors.identifier, "shard_size": options.shard_size}
    if mlm.precision != "fp32":  # rounding then depends on which contexts share a forward
        key.update(batch_size=options.batch_size, examples_per_batch=options.examples_per_batch)
    return key


def augment_table(table: InputTable, out_dir: str | Path, recipe: Recipe, mlm: LoadedMLM,
                  vectors: LoadedVectors, options: BuildOptions = BuildOptions(),
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
    key = _run_key(table, recipe, mlm, vectors, options)
    work = out_dir.with_name(out_dir.name + ".partial")
    if out_dir.exists():
        finished = _finished_report(out_dir, key, work)
        if finished is not None and not options.overwrite:
            return finished  # done earlier: a rerun (perhaps after a kill during clean-up) changes nothing
        if not options.overwrite:
            raise TinyaugError(f"{out_dir} already exists; pass --overwrite to replace it, or choose another --out")
        if finished is None and not _is_replaceable(out_dir):
            raise TinyaugError(f"{out_dir} is not a dataset written by tinyaug augment; --overwrite replaces only "
                               "those (or an empty folder): remove it yourself or choose another --out")
    _open_work(work, key)
    with _run_lock(work, out_dir):
        return _build(table, work, out_dir, key, recipe, mlm, vectors, options, progress, notify)


@contextlib.contextmanager
def _run_lock(work: Path, out_dir: Path) -> Iterator[None]:
    """Hold ``OUT.partial/run.lock`` for the whole run: a second run on the same ``OUT`` stops at
    once with one line instead of racing this one (the lock goes with the process if it dies)."""
    import fcntl

    with open(work / "run.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise TinyaugError(f"another tinyaug run is writing {out_dir} right now; wait for it to finish "
                               "(then rerun to find it complete), or choose another --out") from None
        yield


def _build(table: InputTable, work: Path, out_dir: Path, key: dict, recipe: Recipe, mlm: LoadedMLM,
           vectors: LoadedVectors, options: BuildOptions, progress: Callable[[int], None] | None,
           notify: Callable[[str], None] | None) -> BuildReport:
    """Build the missing shards (on the engine), write each as it arrives, then assemble."""
    total = len(table.dataset)
    shards_dir = work / "shards"
    jobs = shard_jobs(total, options.shard_size)
    missing = [job for job in jobs if not (shards_dir / job.name).exists()]
    resumed = len(jobs) - len(missing)
    if resumed and notify is not None:
        notify(f"Resuming: {resumed} of {len(jobs)} shards were already built")
    if progress and resumed:
        progress(total - sum(job.stop - job.start for job in missing))
    features = augmented_features(table.dataset.features)
    shard_work = ShardWork(recipe, mlm, vectors, tuple(table.text_columns), features,
                           options.batch_size, options.examples_per_batch)
    engine = options.engine or LocalEngine()
    arrow = table.dataset.with_format("arrow")
    for job, rows, stats in engine.augment(shard_work, missing, lambda job: arrow[job.start:job.stop], progress):
        written = write_shard(rows, features, shards_dir / job.name, stats)
        logger.info("wrote shard %d/%d (%d rows)", job.index + 1, len(jobs), written)

    done = [shards_dir / job.name for job in jobs]
    stats = Stats()
    for shard_path in done:
        stats.add(read_shard_stats(shard_path))
    metadata = {
        "tinyaug_version": __version__, "recipe": recipe.to_dict(), "input": table.source,
        "task": table.task.name if table.task else None, "text_columns": list(table.text_columns),
        "label_column": table.label_column, "mlm": mlm.identifier, "mlm_starter": mlm.starter,
        "vectors": vectors.identifier, "shard_size": options.shard_size,
        "skipped_rows": [str(b) for b in table.skipped], "stats": stats.to_dict(),
        "rows_in": total, "rows_out": stats.rows_out, "run_key": key,
    }
    clear_stale(out_dir)
    assemble(done, out_dir, metadata)
    remove_tree(work)
    return BuildReport(out_dir, total, stats.rows_out, len(jobs), resumed, stats, metadata["skipped_rows"], metadata,
                       getattr(engine, "augmenter", None))


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
    ds = datasets.load_from_disk(str(out_dir))
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


def _is_replaceable(path: Path) -> bool:
    """``--overwrite`` may replace an empty folder or a tinyaug dataset, nothing else."""
    if path.is_dir() and not any(path.iterdir()):
        return True
    return (path / "state.json").is_file() and bool(read_metadata(datasets.load_from_disk(str(path))))


def load_augmented(path: str | Path) -> datasets.Dataset:
    """Load an augmented dataset folder, with a clear error if it is not one."""
    path = Path(path)
    if not (path / "state.json").is_file():
        partial = path.resolve().with_name(path.resolve().name + ".partial")
        hint = f"; {partial} holds an unfinished run: rerun the same augment command to finish it" if partial.exists() else ""
        raise InputError(f"{path}: not a dataset written by tinyaug augment (no state.json){hint}")
    try:
        return datasets.load_from_disk(str(path))
    except (ValueError, OSError, pa.ArrowException) as exc:  # a truncated or damaged Arrow file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: the dataset's files are damaged or incomplete ({first}); rebuild it with "
                         "the augment command that made it (--overwrite)") from None
