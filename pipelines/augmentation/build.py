"""The augment job: an ``InputTable`` in, an augmented Arrow dataset out, resumable.

``AugmentJob`` says what to do (the rows, the recipe, the method and the models it needs, how
to run, where to write); ``run(job, executor)`` does it. The command line (``cli.augment``), the
Python API (``api.augment_dataset``) and the benchmarks build the same job and call the same
``run``; where the shards are built is the executor's business (``pipelines.scale``: this process,
or a Ray cluster, ``--engine ray``), and the rows are the same either way.

Work happens in shards of ``shard_size`` examples, in a work folder ``OUT.partial`` beside the
output, through the shard runner (``io.shard_runner``): a run killed at any moment and started
again with the same arguments skips the shards that exist and ends with exactly the rows of an
uninterrupted run (every example draws from its own generator); one with other arguments is
refused. When all shards exist they are joined, the dataset card is written, and the result is
renamed to ``OUT`` (``assemble``); ``OUT`` never holds a partial dataset. Only this process
writes, so one lock on ``OUT`` covers the whole run and no two writers can race.

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
from typing import Any, Callable

import datasets
import pyarrow as pa

from tinyaug import __version__
from tinyaug.augment.engine import Stats
from tinyaug.augment.methods import Method
from tinyaug.augment.recipe import Recipe
from tinyaug.errors import InputError, TinyaugError
from tinyaug.pipelines.augmentation.assemble import assemble
from tinyaug.pipelines.augmentation.methods import MethodModels, ModelSpec, load_models, models_needed
from tinyaug.pipelines.augmentation.shards import (AugmentShards, LoadedWorkers, NamedWorkers, ShardSchema,
                                                   read_shard_stats)
from tinyaug.pipelines.io.models import LoadedMLM
from tinyaug.pipelines.io.outputs import TINYAUG_DATASET, check_inputs, check_output, is_tinyaug_dataset
from tinyaug.pipelines.io.schema import augmented_features, read_metadata
from tinyaug.pipelines.io.shard_runner import ShardRunner, run_lock, shard_jobs
from tinyaug.pipelines.io.storage import arrow_stream_rows, clear_stale, data_files_problem, remove_tree
from tinyaug.pipelines.io.tables import InputTable
from tinyaug.pipelines.io.vectors import LoadedVectors
from tinyaug.pipelines.scale.executor import Executor, LocalExecutor

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class BuildOptions:
    """How to run (none of these change the rows in fp32; in reduced precision a context's scores
    depend on its batch, so ``batch_size`` and ``examples_per_batch`` join the resume key)."""

    batch_size: int = 64  # masked contexts per model forward
    examples_per_batch: int = 256  # examples planned together (candidate look-ups are batched across them)
    shard_size: int = 1000  # examples per shard (the unit of resume)
    overwrite: bool = False
    request: dict | None = None  # the command's arguments and input identities (``preflight``), kept in the metadata

    def __post_init__(self) -> None:
        if self.shard_size < 1 or self.batch_size < 1 or self.examples_per_batch < 1:
            raise TinyaugError("shard size, batch size and examples per batch must be at least 1")


@dataclasses.dataclass
class AugmentJob:
    """One augmentation: ``table``'s rows by ``recipe`` into ``out``.

    ``models``: the models loaded in this process (only those the method needs count: they name
    the run and the dataset). ``spec``: the same models by name, for an executor whose workers
    load their own (Ray); None where the job runs here only. ``method``: a method object the
    caller built (say a method of their own; runs here only); None builds the one
    ``recipe.method`` names.
    """

    table: InputTable
    out: Path
    recipe: Recipe
    models: MethodModels
    spec: ModelSpec | None = None
    method: Method | None = None
    options: BuildOptions = dataclasses.field(default_factory=BuildOptions)

    def __post_init__(self) -> None:
        self.out = Path(self.out).resolve()
        if len(self.table.dataset) == 0:
            raise InputError(f"{self.table.source}: no rows to augment")
        if self.method is None:  # only the models the method uses name the run (and reach the workers)
            needed = models_needed(self.recipe)
            self.models = MethodModels(self.models.mlm if "mlm" in needed else None,
                                       self.models.vectors if "vectors" in needed else None)

    @classmethod
    def load(cls, load: dict[str, Any], out: str | Path, recipe: Recipe, spec: ModelSpec, device: str,
             options: BuildOptions | None = None) -> "AugmentJob":
        """The job over ``load_input(**load)``'s rows, with the models the method needs loaded by
        name (``spec``) on ``device`` (the command line's way; the experiment's too)."""
        from tinyaug.pipelines.io.tables import load_input

        table = load_input(**load)
        return cls(table, Path(out), recipe, load_models(spec, device, models_needed(recipe)), spec,
                   options=options or BuildOptions())

    @property
    def work(self) -> Path:
        """The work folder: ``OUT.partial``."""
        return self.out.with_name(self.out.name + ".partial")

    def run_key(self) -> dict:
        """Everything that decides the rows; a resumed run must match it (the executor does not)."""
        table, options, mlm = self.table, self.options, self.models.mlm
        key = {"tinyaug": __version__, "input": table.fingerprint, "rows": len(table.dataset),
               "text_columns": list(table.text_columns), "columns": list(table.dataset.column_names),
               "recipe": self.recipe.to_dict(), **self.models.identifiers(), "shard_size": options.shard_size}
        if mlm is not None and mlm.precision != "fp32":  # rounding then depends on which contexts share a forward
            key.update(batch_size=options.batch_size, examples_per_batch=options.examples_per_batch)
        return key


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
    augmenter: Method | None = None  # the local executor's method (its timings and model counters); None on Ray
    already_complete: bool = False  # OUT already held this run's result: nothing was done


def run(job: AugmentJob, executor: Executor | None = None, progress: Callable[[int], None] | None = None,
        notify: Callable[[str], None] | None = None) -> BuildReport:
    """Augment every row of ``job.table`` into ``job.out`` on ``executor`` (None: this process;
    see the module docstring). ``progress`` hears rows as they are done; ``notify``, at the start,
    how many shards an interrupted run already built, and any damaged shard."""
    datasets.disable_progress_bars()
    executor = executor or LocalExecutor()
    if job.method is not None and executor.remote:
        raise TinyaugError("a method object runs in this process only; give the Ray executor a method by name")
    if executor.remote and job.spec is None:
        raise TinyaugError("the Ray executor loads the models in its actors, by name: give the masked LM and the "
                           "vectors as names (augment_dataset(mlm=..., vectors=...); AugmentJob.spec), not loaded "
                           "models")
    key = job.run_key()
    check_inputs(job.out, [("--input", job.table.source)])  # a hub source is no path: skipped
    with augment_lock(job.out):  # first: what OUT holds, and OUT.partial, are another run's while it writes
        if job.out.exists() and not job.options.overwrite:
            finished = finished_report(job.out, key)
            if finished is not None:
                return finished  # done earlier: a rerun (perhaps after a kill during clean-up) changes nothing
        check_output(job.out, command="augment", what=TINYAUG_DATASET, overwrite=job.options.overwrite,
                     replaceable=is_tinyaug_dataset)
        return _build(job, key, executor, progress, notify)


def augment_lock(out_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Hold ``OUT.partial/run.lock`` for the whole run: a second run on the same ``OUT`` stops at
    once with one line instead of racing this one (the command takes it before loading anything,
    ``preflight``)."""
    return run_lock(out_dir.with_name(out_dir.name + ".partial"),
                    f"another tinyaug run is writing {out_dir} right now; wait for it to finish (then rerun to "
                    "find it complete), or choose another --out")


def _build(job: AugmentJob, key: dict, executor: Executor, progress: Callable[[int], None] | None,
           notify: Callable[[str], None] | None) -> BuildReport:
    """Build the missing shards on the executor, written as each arrives, then assemble."""
    table, options, models = job.table, job.options, job.models
    total = len(table.dataset)
    features = augmented_features(table.dataset.features)
    runner = ShardRunner(job.work, key, shard_jobs(total, options.shard_size), AugmentShards(features), notify=notify)
    missing = runner.open()
    if progress and runner.resumed:
        progress(total - sum(shard.rows for shard in missing))
    schema = ShardSchema(tuple(table.text_columns), features, options.batch_size, options.examples_per_batch)
    local = None
    if executor.remote:
        assert job.spec is not None
        factory: Any = NamedWorkers(job.recipe, job.spec, schema, executor.device)
    else:
        factory = local = LoadedWorkers(job.recipe, models, schema, job.method)
    arrow = table.dataset.with_format("arrow")
    runner.write(executor.map(factory, missing, lambda shard: arrow[shard.start:shard.stop],
                              expected=models.identifiers(), progress=progress))

    stats = Stats()
    for shard_path in runner.paths():
        stats.add(read_shard_stats(shard_path))
    recipe, mlm = job.recipe, models.mlm
    metadata = {
        "tinyaug_version": __version__, "recipe": recipe.to_dict(), "input": table.source,
        "task": table.task.name if table.task else None, "text_columns": list(table.text_columns),
        "label_column": table.label_column, "method": recipe.method, **models.identifiers(),
        "mlm_starter": mlm.starter if mlm is not None else None, "shard_size": options.shard_size,
        "skipped_rows": [str(b) for b in table.skipped], "stats": stats.to_dict(),
        "rows_in": total, "rows_out": stats.rows_out, "run_key": key,
        **({"request": options.request} if options.request else {}),
    }
    runner.finish(job.out, lambda shards: assemble(shards, job.out, metadata))
    return BuildReport(job.out, total, stats.rows_out, len(runner.jobs), runner.resumed, stats,
                       metadata["skipped_rows"], metadata, local.built if local is not None else None)


def augment_table(table: InputTable, out_dir: str | Path, recipe: Recipe, mlm: LoadedMLM | None,
                  vectors: LoadedVectors | None, options: BuildOptions | None = None,
                  progress: Callable[[int], None] | None = None, notify: Callable[[str], None] | None = None, *,
                  executor: Executor | None = None, method: Method | None = None,
                  spec: ModelSpec | None = None) -> BuildReport:
    """``run(AugmentJob(...), executor)`` with the models given one by one (tests, benchmarks)."""
    job = AugmentJob(table, Path(out_dir), recipe, MethodModels(mlm, vectors), spec, method, options or BuildOptions())
    return run(job, executor, progress, notify)


def finished_report(out_dir: Path, key: dict) -> BuildReport | None:
    """The report of a complete earlier run with the run key ``key`` in ``out_dir``, or None. The
    leftovers of a kill during its clean-up (``OUT.partial``, temporary folders) go: the caller
    holds the run lock (``augment_lock``)."""
    if not (out_dir / "state.json").is_file():
        return None
    ds = _load_whole(out_dir, key)
    if ds is None:  # not tinyaug's: the output check refuses it
        return None
    metadata = read_metadata(ds)
    if metadata.get("run_key") != key:
        return None
    work = out_dir.with_name(out_dir.name + ".partial")
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
