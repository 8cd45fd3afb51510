"""One shard of an augmentation: its source rows in, its output rows (an Arrow table) out.

Both engines run exactly this code on exactly these rows: the local engine in the process that
builds the dataset, the Ray engine in its actors (``pipelines.scale``). Every example draws from
its own generator, so a shard's rows do not depend on where, when or how often it runs; only the
process that builds the dataset writes shards (``write_shard``), each atomically.

Not here: which shards are missing, resuming and assembly (``build``); loading models (``io``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

import datasets
import pyarrow as pa

from tinyaug.augment.constraints import CandidateFilter
from tinyaug.augment.engine import Augmenter, Example, Stats, Variant
from tinyaug.augment.mlm import MaskedLMSource
from tinyaug.augment.recipe import Recipe
from tinyaug.augment.vectors import VectorSource
from tinyaug.pipelines.io.models import LoadedMLM
from tinyaug.pipelines.io.schema import CHANGES, EXAMPLE_ID, VARIANT
from tinyaug.pipelines.io.storage import atomic_directory
from tinyaug.pipelines.io.vectors import LoadedVectors

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


def build_augmenter(recipe: Recipe, mlm: LoadedMLM, vectors: LoadedVectors, batch_size: int) -> Augmenter:
    """The engine for ``recipe`` over loaded models (WordNet read only if the recipe asks)."""
    mlm_source = MaskedLMSource(mlm.model, mlm.tokenizer, context=recipe.mlm_context,
                                batch_size=batch_size, max_length=recipe.max_length)
    antonyms = None
    if recipe.exclude_antonyms:
        from tinyaug.pipelines.io.wordnet import load_antonyms

        antonyms = load_antonyms()
    keep = CandidateFilter(recipe.min_similarity, vectors.words, vectors.vectors, antonyms=antonyms)
    return Augmenter(recipe, mlm.tokenizer, mlm_source, VectorSource(vectors.words, vectors.vectors), keep)


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


def augment_shard(source: pa.Table, text_columns: tuple[str, ...], augmenter: Augmenter,
                  features: datasets.Features, examples_per_batch: int,
                  progress: Callable[[int], None] | None = None) -> tuple[pa.Table, Stats]:
    """The output rows of one shard's source rows (``source``: the input table's slice, with
    ``aug_example_id``), as an Arrow table in ``features``' schema, and its statistics."""
    rows, stats, chunks = [], Stats(), []
    for start in range(0, source.num_rows, examples_per_batch):
        chunks.append(source.slice(start, examples_per_batch).to_pylist())
    examples = ([Example(int(r[EXAMPLE_ID]), tuple(r[c] for c in text_columns)) for r in records]
                for records in chunks)
    for records, (variants, batch_stats) in zip(chunks, augmenter.augment_stream(examples)):
        stats.add(batch_stats)
        for record, example_variants in zip(records, variants):
            rows.extend(variant_rows(record, text_columns, example_variants))
        if progress:
            progress(len(records))
    with augmenter.timed("writing"):
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
