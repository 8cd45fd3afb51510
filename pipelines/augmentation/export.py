"""Exports of an augmented dataset: Parquet, JSON Lines, and GLUE-layout TSV.

Parquet and JSON Lines keep every column and round-trip every value exactly (JSON floats are
written with Python's shortest round-tripping repr). The TSV has the source's columns only, in
the GLUE layout of its task (same header, or none for CoLA; labels written as the task's file
writes them), and is meant to be read with quoting off, as GLUE readers do: quotes are written
as they are, and a tab or line break inside a field, which that layout cannot hold, is an
error unless ``replace_breaks`` turns each into a space (counted in the report). A layout column
the dataset lacks (GLUE ids, for a task loaded from the hub) is written empty and reported.

Every export is written to a temporary file beside the target and renamed into place.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, Iterator

import datasets

from tinyaug.errors import InputError
from tinyaug.pipelines.io import glue
from tinyaug.pipelines.io.schema import PROVENANCE_COLUMNS, read_metadata
from tinyaug.pipelines.io.storage import atomic_file

FORMATS = ("tsv", "parquet", "jsonl")
DEFAULT_NAMES = {"tsv": "train_aug.tsv", "parquet": "train_aug.parquet", "jsonl": "train_aug.jsonl"}
_BREAKS = re.compile(r"[\t\r\n]")


@dataclasses.dataclass
class ExportReport:
    path: Path
    rows: int
    fields_with_breaks_replaced: int = 0
    columns_left_empty: list[str] = dataclasses.field(default_factory=list)  # layout columns the data lacks


def _rows(ds: datasets.Dataset, batch: int = 1000) -> Iterator[dict[str, Any]]:
    for start in range(0, len(ds), batch):
        chunk = ds[start:start + batch]
        yield from (dict(zip(chunk, values)) for values in zip(*chunk.values()))


def export(ds: datasets.Dataset, fmt: str, to: str | Path, *, replace_breaks: bool = False) -> ExportReport:
    """Write ``ds`` as ``fmt`` to ``to``: a file path, or a folder (existing, or ending in ``/``)
    to put ``train_aug.<ext>`` in."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    target = Path(to)
    if target.is_dir() or str(to).endswith(("/", "\\")):
        target = target / DEFAULT_NAMES[fmt]
    with atomic_file(target) as tmp:
        if fmt == "parquet":
            ds.to_parquet(str(tmp))
            report = ExportReport(target, len(ds))
        elif fmt == "jsonl":
            with tmp.open("w", encoding="utf-8") as f:
                for row in _rows(ds):
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
            report = ExportReport(target, len(ds))
        else:
            report = _write_tsv(ds, tmp, target, replace_breaks)
    return report


def _write_tsv(ds: datasets.Dataset, tmp: Path, target: Path, replace_breaks: bool) -> ExportReport:
    meta = read_metadata(ds)
    task = glue.get_task(meta["task"]) if meta.get("task") else None
    columns = [c for c in ds.column_names if c not in PROVENANCE_COLUMNS]
    filled: list[str] = []
    if task is not None:
        # the train layout, or the dev one (MNLI dev has more label columns) when the rows have it
        layout = task.columns_for("dev") if set(task.columns_for("dev")) <= set(columns) else task.columns
        filled = [c for c in layout if c not in columns]  # e.g. GLUE ids, absent from hub datasets
        columns = list(layout)
    label_column = task.label_column if task else None
    label_feature = ds.features.get(meta.get("label_column") or "")
    replaced = 0
    with tmp.open("w", encoding="utf-8", newline="") as f:
        if task is None or task.header:
            f.write("\t".join(columns) + "\n")
        for number, row in enumerate(_rows(ds)):
            fields = []
            for column in columns:
                value = row.get(column, "")
                if task is not None and column == label_column:
                    text = glue.format_label(task, value)
                elif isinstance(label_feature, datasets.ClassLabel) and column == meta.get("label_column"):
                    text = label_feature.int2str(value)
                else:
                    text = "" if value is None else str(value)
                if _BREAKS.search(text):
                    if not replace_breaks:
                        raise InputError(f"row {number} (aug_example_id {row.get('aug_example_id')}), column "
                                         f"{column!r}: a tab or line break, which the TSV layout cannot hold; "
                                         "pass --replace-breaks to write each as a space, or export parquet/jsonl")
                    text = _BREAKS.sub(" ", text)
                    replaced += 1
                fields.append(text)
            f.write("\t".join(fields) + "\n")
    return ExportReport(target, len(ds), replaced, filled)
