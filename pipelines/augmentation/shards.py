"""One shard of an augmentation: its source rows in, its output rows (an Arrow table) out.

Both engines run exactly this code on exactly these rows: the local engine in the process that
builds the dataset, the Ray engine in its actors (``pipelines.scale``). Every example draws from
its own generator, so a shard's rows do not depend on where, when or how often it runs; only the
process that builds the dataset writes shards (``write_shard``), each atomically, and a resumed
run checks each one it finds (``shard_problem``) before it trusts it.

Not here: which shards are missing, resuming and assembly (``build``); loading models (``io``).
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
from tinyaug.pipelines.io.schema import CHANGES, EXAMPLE_ID, VARIANT
from tinyaug.pipelines.io.storage import arrow_stream_rows, atomic_directory, data_files_problem

STATS_FILE = "stats.json"


@dataclasses.dataclass(frozen=True)
class ShardJob:
    """Shard ``index``: source rows ``start`` to ``stop`` (exclusive)."""

    index: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"{self.index:05d}"


def shard_jobs(total: int, shard_size: int) -> list[ShardJob]:
    """The shards of ``total`` rows, ``shard_size`` rows each (the last one may be shorter)."""
    return [ShardJob(i, lo, min(total, lo + shard_size)) for i, lo in enumerate(range(0, total, shard_size))]


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
