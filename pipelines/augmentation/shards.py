"""One shard of an augmentation: its source rows in, its output rows (an Arrow table) out.

Every executor runs exactly this code on exactly these rows (``augment_shard``, through a
``ShardWorker``): the local executor in the process that builds the dataset, with the models it
loaded (``LoadedWorkers``), the Ray executor in its actors, which load their own by name
(``NamedWorkers``; ``pipelines.scale``). Every example draws from its own generator, so a shard's
rows do not depend on where, when or how often it runs. Only the process that builds the dataset
writes shards (``AugmentShards``: ``write_shard``, each atomically), and a resumed run checks
each one it finds (``shard_problem``) before it trusts it.

Not here: which shards are missing, resuming (``io.shard_runner``); assembly (``assemble``);
loading models (``methods``, ``io``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

import datasets
import pyarrow as pa

from tinyaug.augment.engine import Example, Stats, Variant
from tinyaug.augment.methods import Method
from tinyaug.augment.recipe import Recipe
from tinyaug.pipelines.augmentation.methods import MethodModels, ModelSpec, build_method, load_models, models_needed
from tinyaug.pipelines.io.onnx_runtime import check_actor_device
from tinyaug.pipelines.io.schema import CHANGES, EXAMPLE_ID, VARIANT
from tinyaug.pipelines.io.shard_runner import ShardJob
from tinyaug.pipelines.io.storage import arrow_stream_rows, atomic_directory, data_files_problem

STATS_FILE = "stats.json"
SHARDS_FOLDER = "shards"  # in the work folder OUT.partial


@dataclasses.dataclass(frozen=True)
class ShardSchema:
    """What every shard of a run shares: the text columns, the output schema, the batching."""

    text_columns: tuple[str, ...]
    features: datasets.Features
    batch_size: int  # masked contexts per model forward
    examples_per_batch: int  # examples planned together


@dataclasses.dataclass
class ShardWorker:
    """Augments one shard's source rows with ``method``: ``(Arrow table, Stats)``."""

    method: Method
    schema: ShardSchema
    identifiers: dict[str, str]  # the models the method uses (``MethodModels.identifiers``)

    def __call__(self, rows: pa.Table, progress: Callable[[int], None] | None = None) -> tuple[pa.Table, Stats]:
        return augment_shard(rows, self.schema.text_columns, self.method, self.schema.features,
                             self.schema.examples_per_batch, progress)


@dataclasses.dataclass
class LoadedWorkers:
    """The local executor's worker factory: the models loaded in this process, or a method object
    the caller built (``method``, say a method of their own). ``built``: the method, once built."""

    recipe: Recipe
    models: MethodModels
    schema: ShardSchema
    method: Method | None = None
    built: Method | None = None

    def __call__(self) -> ShardWorker:
        self.built = self.built or self.method or build_method(self.recipe, self.models, self.schema.batch_size)
        return ShardWorker(self.built, self.schema, self.models.identifiers())


@dataclasses.dataclass(frozen=True)
class NamedWorkers:
    """A remote executor's worker factory (picklable): each worker loads the models by name, only
    those the method needs, on ``device``, and builds the method."""

    recipe: Recipe
    spec: ModelSpec
    schema: ShardSchema
    device: str

    def __post_init__(self) -> None:
        check_actor_device(self.spec.backend, self.device)

    def __call__(self) -> ShardWorker:
        models = load_models(self.spec, self.device, models_needed(self.recipe))
        return ShardWorker(build_method(self.recipe, models, self.schema.batch_size), self.schema,
                           models.identifiers())


@dataclasses.dataclass(frozen=True)
class AugmentShards:
    """How an augmentation keeps its shards (``io.shard_runner.ShardStore``): one ``save_to_disk``
    folder each, ``OUT.partial/shards/00000``, with its statistics."""

    features: datasets.Features

    def path(self, work: Path, job: ShardJob) -> Path:
        return work / SHARDS_FOLDER / job.name

    def write(self, result: tuple[pa.Table, Stats], target: Path) -> None:
        table, stats = result
        write_shard(table, self.features, target, stats)

    def problem(self, job: ShardJob, path: Path) -> str | None:
        return shard_problem(path)


def variant_rows(row: dict[str, Any], text_columns: tuple[str, ...], variants: list[Variant]) -> list[dict]:
    """The output rows of one source row: its columns with each variant's texts and provenance."""
    out = []
    for number, variant in enumerate(variants):
        new = dict(row)
        new.update(zip(text_columns, variant.texts))
        new[VARIANT] = number
        new[CHANGES] = [{**ch.to_dict(), "column": text_columns[ch.column]} for ch in variant.changes]
        out.append(new)
    return out


def augment_shard(source: pa.Table, text_columns: tuple[str, ...], method: Method,
                  features: datasets.Features, examples_per_batch: int,
                  progress: Callable[[int], None] | None = None) -> tuple[pa.Table, Stats]:
    """The output rows of one shard's source rows (``source``: the input table's slice, with
    ``aug_example_id``), as an Arrow table in ``features``' schema, and its statistics. A method
    with ``augment_stream`` (``tinybert``) gets the batches as a stream, to overlap its work."""
    rows, stats, chunks = [], Stats(), []
    for start in range(0, source.num_rows, examples_per_batch):
        chunks.append(source.slice(start, examples_per_batch).to_pylist())
    examples = ([Example(int(r[EXAMPLE_ID]), tuple(r[c] for c in text_columns)) for r in records]
                for records in chunks)
    stream = getattr(method, "augment_stream", None)
    results = stream(examples) if stream is not None else map(method.augment, examples)
    for records, (variants, batch_stats) in zip(chunks, results):
        stats.add(batch_stats)
        for record, example_variants in zip(records, variants):
            rows.extend(variant_rows(record, text_columns, example_variants))
        if progress:
            progress(len(records))
    timed = getattr(method, "timed", None)
    with timed("writing") if timed is not None else contextlib.nullcontext():
        table = datasets.Dataset.from_list(rows, features=features).data.table
    return table, stats


def write_shard(table: pa.Table, features: datasets.Features, target: Path, stats: Stats) -> int:
    """Save one shard's rows and statistics as the folder ``target``, atomically; its row count."""
    dataset = datasets.Dataset(table, info=datasets.DatasetInfo(features=features))
    with atomic_directory(target) as tmp:
        dataset.save_to_disk(str(tmp))
        (tmp / STATS_FILE).write_text(json.dumps(stats.to_dict()), encoding="utf-8")
    return len(dataset)


def read_shard_stats(shard: Path) -> Stats:
    return Stats.from_dict(json.loads((shard / STATS_FILE).read_text()))


def shard_problem(shard: Path) -> str | None:
    """What is wrong with a built shard folder, or None when it is whole: its ``state.json`` does
    not match its Arrow files, a file is empty or cut short (a power loss, a full disk), or its rows
    are not the count its statistics recorded."""
    if not shard.is_dir():
        return "not a folder"
    problem = data_files_problem(shard)
    if problem is not None:
        return problem
    try:
        json.loads((shard / "dataset_info.json").read_text(encoding="utf-8"))
        expected = read_shard_stats(shard).rows_out
        state = json.loads((shard / "state.json").read_text(encoding="utf-8"))
        rows = sum(arrow_stream_rows(shard / entry["filename"]) for entry in state["_data_files"])
    except (OSError, ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if rows != expected:
        return f"{rows} rows where its statistics say {expected}"
    return None
