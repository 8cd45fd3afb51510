"""Exports of an augmented dataset, each in the layout its consumer reads with no edits.

- ``tsv``: the GLUE file layout of the task (the official header and column order, none for
  CoLA; labels as the task's file writes them), as GLUE readers and the TinyBERT reference's
  processors read it, with quoting off: quotes are written as they are, and a tab or line break
  inside a field, which that layout cannot hold, is an error unless ``replace_breaks`` turns
  each into a space (counted). File columns the dataset lacks (MRPC's ids, unless augment kept
  them with ``--keep-source-columns``) are written empty and reported. Not for non-GLUE tables'
  provenance: the TSV holds the source's columns only.
- ``parquet``, ``jsonl``: every column in the dataset's schema, values exact (JSON floats as
  Python's shortest round-tripping text); the provenance columns unless left out.
- ``csv``, ``json``: what ``run_glue.py --train_file`` reads (``.json`` is JSON Lines, which it
  loads with ``load_dataset("json")``): the text columns first, then ``label``, and nothing else
  by default, since run_glue takes the first two non-label columns as the text pair when they
  are not ``sentence1``/``sentence2`` (a single-sentence task with any other column would be
  read as a pair). Labels are class indices (floats for STS-B), as the hub stores them.

Every export is written to a temporary file beside the target and renamed into place, with the
permissions the umask gives. The target (``export_target``) must end with the format's suffix;
an existing one is replaced only with ``overwrite`` and only when it is an earlier export: a
regular file with that suffix that is no GLUE split file (``train.tsv``, ``dev.tsv``, ...) and
not inside the exported dataset. A link is written through (the file it points at is replaced;
the link stays).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from pathlib import Path
from typing import Any, Iterator

import datasets

from tinyaug.errors import InputError, OutputError
from tinyaug.pipelines.augmentation.formats import DEFAULT_NAMES, EXPORT_FORMATS, FORMATS, PROVENANCE_BY_DEFAULT, SUFFIXES
from tinyaug.pipelines.io import glue
from tinyaug.pipelines.io.outputs import check_output, real_path
from tinyaug.tasks import TASKS
from tinyaug.pipelines.io.schema import PROVENANCE_COLUMNS, check_columns, read_metadata
from tinyaug.pipelines.io.storage import atomic_file

_BREAKS = re.compile(r"[\t\r\n]")
# the files GLUE's download holds: never an earlier export, so never replaced
GLUE_FILES = frozenset({"test.tsv", "test_matched.tsv", "test_mismatched.tsv",
                        *(name for task in TASKS.values() for name in (task.train_file, *task.dev_files))})


@dataclasses.dataclass
class ExportReport:
    path: Path
    rows: int
    columns: list[str]  # as written
    fields_with_breaks_replaced: int = 0
    columns_left_empty: list[str] = dataclasses.field(default_factory=list)  # layout columns the data lacks


def _rows(ds: datasets.Dataset, batch: int = 1000) -> Iterator[dict[str, Any]]:
    for start in range(0, len(ds), batch):
        chunk = ds[start:start + batch]
        yield from (dict(zip(chunk, values)) for values in zip(*chunk.values()))


def export_columns(ds: datasets.Dataset, fmt: str, provenance: bool | None = None) -> list[str]:
    """The columns ``fmt`` writes (the TSV's are the file layout's, see ``_tsv_layout``)."""
    provenance = PROVENANCE_BY_DEFAULT[fmt] if provenance is None else provenance
    meta = read_metadata(ds)
    if EXPORT_FORMATS[fmt].columns == "run_glue":
        label = meta.get("label_column")
        columns = [*meta.get("text_columns", []), *([label] if label else [])]
        columns = [c for c in columns if c in ds.column_names] or \
            [c for c in ds.column_names if c not in PROVENANCE_COLUMNS]
    else:
        columns = [c for c in ds.column_names if c not in PROVENANCE_COLUMNS]
    if provenance:
        columns += [c for c in PROVENANCE_COLUMNS if c in ds.column_names]
    return columns


def export_target(fmt: str, to: str | Path, *, dataset: str | Path | None = None, overwrite: bool = False) -> Path:
    """The file an export to ``to`` writes (links followed), checked before anything is read: a
    folder (existing, or ending in ``/``) gets ``train_aug.<ext>``; a file must end with the
    format's suffix; an existing file is replaced only with ``overwrite`` and only when it is an
    earlier export (see the module docstring); never inside ``dataset``."""
    target = Path(to)
    if target.is_dir() or str(to).endswith(("/", "\\")):
        target = real_path(target) / DEFAULT_NAMES[fmt]
    suffix = SUFFIXES.get(fmt)
    if suffix is not None and target.suffix.lower() != suffix:
        other = next((name for name, ext in SUFFIXES.items() if ext == target.suffix.lower()), None)
        hint = f", or pass --format {other}" if other else ""
        raise OutputError(f"--to {to}: --format {fmt} writes a {suffix} file; name it "
                          f"{target.with_suffix(suffix).name}{hint}")

    def earlier_export(path: Path) -> bool:
        return path.is_file() and path.suffix.lower() == suffix and path.name not in GLUE_FILES

    return check_output(target, command="export", option="--to", kind="file", overwrite=overwrite,
                        inputs=[("DATASET", dataset)], replaceable=earlier_export,
                        what=f"an earlier export (a {suffix} file that is no GLUE data file)")


def export(ds: datasets.Dataset, fmt: str, to: str | Path, *, replace_breaks: bool = False,
           provenance: bool | None = None, labels: str = "gold", overwrite: bool = False) -> ExportReport:
    """Write ``ds`` as ``fmt`` to ``to``: a file path, or a folder (existing, or ending in ``/``)
    to put ``train_aug.<ext>`` in. ``provenance``: keep the ``aug_`` columns (default: yes for
    Parquet and JSON Lines, no for CSV and JSON; the TSV never has them). ``labels="teacher"``:
    each variant's label is the teacher's prediction (``tinyaug teacher-logits``), not the
    original's copied gold label, so that hard-label training does not learn flipped labels.
    ``overwrite``: replace an earlier export at ``to`` (``export_target``)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if labels not in ("gold", "teacher"):
        raise InputError(f"--labels {labels!r}: choose gold or teacher")
    files = [Path(f["filename"]).parent for f in ds.cache_files]
    target = export_target(fmt, to, dataset=files[0] if files else None, overwrite=overwrite)
    check_columns(ds, str(files[0]) if files else "the dataset")  # odd aug_/teacher_ columns; plain ones pass
    if labels == "teacher":
        from tinyaug.pipelines.augmentation.filter import check_teacher_columns, with_teacher_labels

        check_teacher_columns(ds, str(files[0]) if files else "DATASET")
        ds, _ = with_teacher_labels(ds)
    spec = EXPORT_FORMATS[fmt]
    table = ds if spec.columns == "layout" else ds.select_columns(export_columns(ds, fmt, provenance))
    with atomic_file(target) as tmp:
        columns, replaced, filled = spec.load_writer()(table, tmp, replace_breaks)
    return ExportReport(target, len(ds), columns, replaced, filled)


def write_parquet(ds: datasets.Dataset, tmp: Path, replace_breaks: bool = False) -> tuple[list[str], int, list[str]]:
    ds.to_parquet(str(tmp))
    return list(ds.column_names), 0, []


def write_json_lines(ds: datasets.Dataset, tmp: Path, replace_breaks: bool = False) -> tuple[list[str], int, list[str]]:
    """One JSON object per line, values exact (floats as Python's shortest round-tripping text)."""
    with tmp.open("w", encoding="utf-8") as f:
        for row in _rows(ds):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return list(ds.column_names), 0, []


def write_csv(ds: datasets.Dataset, tmp: Path, replace_breaks: bool = False) -> tuple[list[str], int, list[str]]:
    """RFC 4180 CSV (quoted where needed, so commas, quotes and line breaks survive); nested
    provenance values as JSON text."""
    with tmp.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ds.column_names)
        for row in _rows(ds):
            writer.writerow([json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v
                             for v in row.values()])
    return list(ds.column_names), 0, []


def _tsv_layout(ds: datasets.Dataset, task: glue.TaskSpec) -> list[str]:
    """The file columns to write: the train layout, or the dev one (MNLI dev has five label
    columns) when the dataset kept the dev-only columns."""
    dev = task.tsv_columns_for("dev")
    dev_only = [c for c in dev if c not in task.tsv_columns]
    if dev_only and all(task.dataset_column(c) in ds.column_names for c in dev_only):
        return list(dev)
    return list(task.tsv_columns)


def write_tsv(ds: datasets.Dataset, tmp: Path, replace_breaks: bool = False) -> tuple[list[str], int, list[str]]:
    """The task's GLUE file layout (see the module docstring); every dataset column it needs."""
    meta = read_metadata(ds)
    task = glue.get_task(meta["task"]) if meta.get("task") else None
    if task is not None:
        layout = _tsv_layout(ds, task)
        sources = [task.dataset_column(c) for c in layout]  # the dataset column behind each file column
    else:
        layout = sources = [c for c in ds.column_names if c not in PROVENANCE_COLUMNS]
    filled = [file_column for file_column, column in zip(layout, sources) if column not in ds.column_names]
    label_column = meta.get("label_column")
    label_feature = ds.features.get(label_column or "")
    replaced = 0
    with tmp.open("w", encoding="utf-8", newline="") as f:
        if task is None or task.header:
            f.write("\t".join(layout) + "\n")
        for number, row in enumerate(_rows(ds)):
            fields = []
            for file_column, column in zip(layout, sources):
                value = row.get(column, "")
                if task is not None and column == task.label_column:
                    text = glue.format_label(task, value)
                elif isinstance(label_feature, datasets.ClassLabel) and column == label_column:
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
    return layout, replaced, filled
