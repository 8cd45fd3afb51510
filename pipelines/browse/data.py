"""The data behind ``tinyaug browse``'s dataset view: filters and pages over an augmented dataset.

The dataset stays memory-mapped (its Arrow files, as ``datasets`` loads them): a filter is
computed column-wise with ``pyarrow.compute`` over the whole dataset into a row mask, once per
set of filters (cached), and a page reads only its own rows. Rows of one source example are
contiguous (the builder writes them so), which makes examples cheap to find: the row ranges come
from where ``aug_example_id`` changes.

Not here: HTML (``render``), the web app (``app``).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinyaug.errors import InputError
from tinyaug.pipelines.augmentation.inspect import (change_segments, label_text, open_augmented, teacher_text,
                                                     text_columns)
from tinyaug.pipelines.io.schema import CARD_FILE, CHANGES, EXAMPLE_ID, TEACHER_FLIP, VARIANT, read_metadata

MAX_PAGE_SIZE = 100
MAX_SEARCH_CHARS = 200


@dataclasses.dataclass(frozen=True)
class Filters:
    """Which variants to show: by the source of a replaced word, the label, changed rows only, the
    teacher's flips only, and a case-insensitive text search. An example is shown when one of
    its variants matches, with its original first."""

    source: str = "any"
    label: str | None = None
    changed_only: bool = False
    flips_only: bool = False
    search: str = ""

    def __post_init__(self) -> None:
        if len(self.search) > MAX_SEARCH_CHARS:
            raise InputError(f"search text of {len(self.search)} characters: at most {MAX_SEARCH_CHARS}")

    @property
    def active(self) -> bool:
        return self != Filters()


@dataclasses.dataclass
class RowView:
    variant: int
    segments: dict[str, list[tuple[str, dict | None]]]  # per text column: (piece, change or None)
    label: str | None
    teacher: str | None
    flip: bool | None


@dataclasses.dataclass
class ExampleView:
    example_id: int
    rows: list[RowView]  # the original first, then the matching variants
    variants_total: int  # variants of the example, matching or not


@dataclasses.dataclass
class Page:
    number: int  # from 1
    pages: int
    examples: list[ExampleView]
    matching_examples: int
    matching_rows: int


class DatasetBrowser:
    """Filters and pages over the augmented dataset at ``path`` (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.dataset = open_augmented(self.path, "browse")
        self.metadata = read_metadata(self.dataset)
        self.text_columns = text_columns(self.dataset)
        self.label_column = self.metadata.get("label_column")
        self.table = self.dataset.with_format("arrow")
        self.ids = ids = self.table[EXAMPLE_ID].to_numpy()
        first = np.r_[True, ids[1:] != ids[:-1]]  # the first row of an example
        self.starts = np.flatnonzero(first)
        self.example_of_row = np.cumsum(first) - 1  # example position per row
        self.variant = self.table[VARIANT].to_numpy()
        self.has_teacher = TEACHER_FLIP in self.dataset.column_names

    @property
    def examples(self) -> int:
        return len(self.starts)

    @functools.cached_property
    def sources(self) -> list[str]:
        """The sources of the dataset's edits (``mlm``, ``vectors``, ``wordnet``, ...), in name order."""
        changes = _combined(self.table[CHANGES])
        return sorted(s for s in pc.unique(pc.struct_field(pc.list_flatten(changes), "source")).to_pylist() if s)

    def labels(self) -> list[str]:
        feature = self.dataset.features.get(self.label_column) if self.label_column else None
        return list(feature.names) if isinstance(feature, datasets.ClassLabel) else []

    def card(self) -> str:
        card = self.path / CARD_FILE
        return card.read_text(encoding="utf-8") if card.is_file() else "(no dataset card)"

    @functools.lru_cache(maxsize=16)
    def row_mask(self, filters: Filters) -> np.ndarray:
        """True for every variant row (not originals) that passes ``filters``."""
        mask = self.variant > 0
        changes = _combined(self.table[CHANGES])
        if filters.changed_only or filters.source != "any":
            mask &= pc.list_value_length(changes).fill_null(0).to_numpy(zero_copy_only=False) > 0
        if filters.source != "any":
            if filters.source not in self.sources:
                raise InputError(f"source {filters.source!r}: this dataset's edits come from "
                                 f"{', '.join(self.sources) or 'no source'}")
            parents = pc.list_parent_indices(changes).to_numpy(zero_copy_only=False)
            sources = pc.struct_field(pc.list_flatten(changes), "source").to_numpy(zero_copy_only=False)
            has = np.zeros(len(mask), dtype=bool)
            has[parents[sources == filters.source]] = True
            mask &= has
        if filters.label is not None:
            if filters.label not in self.labels():
                raise InputError(f"label {filters.label!r}: this dataset's labels are {', '.join(self.labels()) or 'none'}")
            wanted = self.dataset.features[self.label_column].str2int(filters.label)
            mask &= self.table[self.label_column].to_numpy(zero_copy_only=False) == wanted
        if filters.flips_only:
            if not self.has_teacher:
                raise InputError(f"{self.path} has no teacher predictions: run tinyaug teacher-logits on it first")
            mask &= _combined(self.table[TEACHER_FLIP]).fill_null(False).to_numpy(zero_copy_only=False)
        if filters.search:
            found = np.zeros(len(mask), dtype=bool)
            for column in self.text_columns:
                hits = pc.match_substring(_combined(self.table[column]), filters.search, ignore_case=True)
                found |= hits.fill_null(False).to_numpy(zero_copy_only=False)
            mask &= found
        return mask

    def page(self, filters: Filters = Filters(), number: int = 1, size: int = 10) -> Page:
        """Page ``number`` (from 1; clamped to the last) of the examples that match ``filters``."""
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InputError(f"page size {size}: between 1 and {MAX_PAGE_SIZE}")
        mask = self.row_mask(filters)
        matching = np.unique(self.example_of_row[mask]) if filters.active else np.arange(self.examples)
        pages = max(1, -(-len(matching) // size))
        number = min(max(1, number), pages)
        chosen = matching[(number - 1) * size:number * size]
        groups = []  # per example: its row range and the rows to show (the original, then matching variants)
        for position in chosen:
            start, stop = self._rows_of(int(position))
            groups.append((start, stop, [start, *(start + np.flatnonzero(mask[start:stop])).tolist()]))
        rows = [row for _, _, shown in groups for row in shown]
        records = iter(self.dataset.select(rows).to_list() if rows else [])
        examples = [ExampleView(int(self.ids[start]), [self._row_view(next(records)) for _ in shown], stop - start - 1)
                    for start, stop, shown in groups]
        return Page(number, pages, examples, len(matching), int(mask.sum()))

    def original_text(self, example_id: int, column: str) -> str:
        """The original text of ``column`` in source example ``example_id``."""
        positions = np.flatnonzero(self.ids[self.starts] == example_id)
        if not len(positions) or column not in self.text_columns:
            raise InputError(f"no example {example_id} with a text column {column!r} in {self.path}")
        return self.dataset[int(self.starts[positions[0]])][column]

    def _rows_of(self, position: int) -> tuple[int, int]:
        start = int(self.starts[position])
        stop = int(self.starts[position + 1]) if position + 1 < len(self.starts) else len(self.variant)
        return start, stop

    def _row_view(self, record: dict[str, Any]) -> RowView:
        original = record[VARIANT] == 0
        segments = {column: change_segments(record[column], [] if original else record[CHANGES], column)
                    for column in self.text_columns}
        flip = record.get(TEACHER_FLIP) if self.has_teacher else None
        return RowView(record[VARIANT], segments, label_text(self.dataset, record),
                       teacher_text(self.dataset, record), flip)


def _combined(column: Any) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
