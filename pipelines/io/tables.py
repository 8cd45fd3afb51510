"""Inputs: a GLUE task (a data dir, the embedded sample, or the hub) or any table of text.

Tables: a dataset saved with ``save_to_disk``, Parquet, JSON Lines, CSV, or TSV with a header
(read with quoting off, as GLUE files are). Every reader checks what the augmenter relies on:
the text columns exist and hold non-empty strings, and the label column (if any) has a value
in every row. A bad row is an ``InputError`` naming the file, line and column, or, with
``skip_bad_rows``, a counted skip.

Every example gets a stable id, ``aug_example_id``: its 0-based row in the source, so that the
generator of each example, and so its rows, do not depend on limits, skips or shards.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

import datasets

from tinyaug.errors import InputError
from tinyaug.pipelines.io import glue
from tinyaug.pipelines.io.glue import BadRow, TaskSpec
from tinyaug.pipelines.io.schema import EXAMPLE_ID
from tinyaug.pipelines.io.tasks import INDEX

logger = logging.getLogger(__name__)

SAMPLE_TASKS = ("sst2", "mrpc", "rte", "cola", "stsb")  # shipped in tinyaug/resources/glue_sample


@dataclasses.dataclass
class InputTable:
    """Rows to augment and what to do with them."""

    dataset: datasets.Dataset  # has EXAMPLE_ID
    text_columns: tuple[str, ...]
    label_column: str | None
    source: str  # where the rows came from, for the dataset card
    task: TaskSpec | None = None
    skipped: list[BadRow] = dataclasses.field(default_factory=list)
    fingerprint: str = ""  # changes when the source changes (resume checks it)


def sample_dir() -> Path:
    """The embedded GLUE sample (a few hundred real train rows of a few tasks)."""
    return Path(str(resources.files("tinyaug") / "resources" / "glue_sample"))


def _fingerprint(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def load_input(*, task: str | None = None, data_dir: str | Path | None = None,
               input_path: str | Path | None = None, split: str = "train",
               text_columns: tuple[str, ...] = (), label_column: str | None = None,
               skip_bad_rows: bool = False, limit: int | None = None, from_hub: bool = False,
               keep_source_columns: bool = False) -> InputTable:
    """Resolve the CLI's input options into an ``InputTable``. A GLUE task comes in the hub's
    schema (``tasks``) whatever its source; ``keep_source_columns`` keeps the file's other
    columns as ``source_<name>``."""
    spec = glue.get_task(task) if task else None
    if input_path is None and spec is None:
        raise InputError("say what to augment: --task NAME (GLUE) or --input FILE with --text-columns")
    if input_path is None:
        assert spec is not None
        if from_hub:
            ds = glue.load_hub_split(spec, split)
            ds = ds.select(range(min(limit, len(ds)))) if limit is not None else ds
            return InputTable(ds, spec.text_columns, spec.label_column,
                              f"nyu-mll/glue {spec.hub_config} {split} (hub)", spec, [], f"hub|{spec.name}|{split}")
        if data_dir is None:
            if spec.name not in SAMPLE_TASKS:
                raise InputError(f"the embedded sample has {', '.join(SAMPLE_TASKS)}, not {spec.name}; "
                                 "pass --data-dir to a GLUE data folder")
            data_dir = sample_dir()
        path = glue.task_file(Path(data_dir), spec, split)
        ds, bad = glue.read_tsv(path, spec, split, skip_bad_rows=skip_bad_rows, limit=limit,
                                keep_source_columns=keep_source_columns)
        return InputTable(ds, spec.text_columns, spec.label_column, str(path), spec, bad, _fingerprint(path))
    path = Path(input_path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if spec is not None and path.suffix == ".tsv":
        ds, bad = glue.read_tsv(path, spec, split, skip_bad_rows=skip_bad_rows, limit=limit,
                                keep_source_columns=keep_source_columns)
        return InputTable(ds, spec.text_columns, spec.label_column, str(path), spec, bad, _fingerprint(path))
    columns = tuple(text_columns) or (spec.text_columns if spec else ())
    label = label_column if label_column is not None else (spec.label_column if spec else None)
    if not columns:
        raise InputError(f"{path}: say which columns hold the text with --text-columns (e.g. --text-columns sentence)")
    ds, bad = read_table(path, columns, label, skip_bad_rows=skip_bad_rows, limit=limit)
    return InputTable(ds, columns, label, str(path), None, bad,
                      _fingerprint(path if path.is_file() else path / "state.json"))


def read_table(path: Path, text_columns: tuple[str, ...], label_column: str | None, *,
               skip_bad_rows: bool = False, limit: int | None = None) -> tuple[datasets.Dataset, list[BadRow]]:
    """Read a table file or a ``save_to_disk`` folder and check its rows."""
    if path.is_dir():
        if not (path / "state.json").is_file() and not (path / "dataset_dict.json").is_file():
            raise InputError(f"{path}: a folder must be a dataset saved with save_to_disk (state.json missing)")
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if "train" not in loaded:
                raise InputError(f"{path}: a DatasetDict without a 'train' split ({', '.join(loaded)})")
            loaded = loaded["train"]
        rows: Any = ((i + 1, r) for i, r in enumerate(loaded))
        features = loaded.features
        where = "row"
    else:
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            loaded = datasets.Dataset.from_parquet(str(path))
            rows, features, where = ((i + 1, r) for i, r in enumerate(loaded)), loaded.features, "row"
        elif suffix in (".jsonl", ".json"):
            rows, features, where = _json_lines(path), None, "line"
        elif suffix in (".csv", ".tsv"):
            rows, features, where = _delimited(path, "\t" if suffix == ".tsv" else ","), None, "line"
        else:
            raise InputError(f"{path}: unknown table format {suffix!r}; use .parquet, .jsonl, .csv, .tsv "
                             "or a save_to_disk folder")
    return check_rows(rows, str(path), text_columns, label_column, features, where=where,
                      skip_bad_rows=skip_bad_rows, limit=limit)


def check_rows(rows: Iterable[tuple[int, Any]], source: str, text_columns: tuple[str, ...],
               label_column: str | None, features: datasets.Features | None, *, where: str = "row",
               skip_bad_rows: bool = False, limit: int | None = None,
               example_ids: Sequence[int] | None = None) -> tuple[datasets.Dataset, list[BadRow]]:
    """Check ``(number, row)`` pairs (text columns hold non-empty strings, the label is there) and
    build the dataset, with ``aug_example_id`` the row's position (or ``example_ids[position]``)."""
    path = source
    kept: list[dict[str, Any]] = []
    bad: list[BadRow] = []
    required = (*text_columns, *([label_column] if label_column else []))
    for index, (number, row) in enumerate(rows):
        if limit is not None and len(kept) >= limit:
            break
        if isinstance(row, BadRow):
            bad.append(row)
            continue
        missing = [c for c in required if c not in row]
        if missing and not kept and not bad:  # the first row sets the columns: a wrong option, not a bad row
            raise InputError(f"{path}: no column {', '.join(map(repr, missing))}; the columns are "
                             f"{', '.join(map(repr, row))}; choose with --text-columns / --label-column")
        reason = f"no column {', '.join(map(repr, missing))}" if missing else None
        for c in text_columns if reason is None else ():
            if not isinstance(row[c], str):
                reason = f"column {c!r} holds {type(row[c]).__name__}, not text"
                break
        reason = reason or glue.check_text(row, text_columns)
        if reason is None and label_column and (row[label_column] is None or row[label_column] == ""):
            reason = f"missing label in column {label_column!r}"
        if reason is not None:
            bad.append(BadRow(str(path), number, f"{where} {number}: {reason}" if where == "row" else reason))
            continue
        kept.append({**row, EXAMPLE_ID: index if example_ids is None else int(example_ids[index])})
    if bad and not skip_bad_rows:
        more = f" ({len(bad) - 1} more bad rows)" if len(bad) > 1 else ""
        raise InputError(f"{bad[0]}{more}; fix the file or pass --skip-bad-rows to skip and count them")
    if not kept:
        raise InputError(f"{path}: no rows to augment" + (f" ({len(bad)} bad rows skipped)" if bad else ""))
    if label_column and len({type(r[label_column]) for r in kept}) > 1:
        kinds = sorted({type(r[label_column]).__name__ for r in kept})
        raise InputError(f"{path}: column {label_column!r} mixes {' and '.join(kinds)} labels; use one kind")
    columns = list(dict.fromkeys(c for r in kept for c in r))  # every column any row has, in first-seen order
    ds = datasets.Dataset.from_list([{c: r.get(c) for c in columns} for r in kept])
    if features is not None and kept:
        ds = ds.cast(datasets.Features({**features, EXAMPLE_ID: datasets.Value("int64")}))
    if label_column and kept and isinstance(kept[0][label_column], str):
        ds = ds.class_encode_column(label_column)  # string labels -> ClassLabel (sorted names)
    return ds, bad


def table_from_dataset(dataset: datasets.Dataset, text_columns: tuple[str, ...], label_column: str | None, *,
                       task: TaskSpec | None = None, source: str = "a datasets.Dataset") -> InputTable:
    """An ``InputTable`` of an in-memory dataset, checked as a file would be. A GLUE task's rows
    (the hub's schema, with ``idx``) keep ``idx`` as their example id, as the TSV and hub inputs do."""
    missing = [c for c in (*text_columns, *([label_column] if label_column else [])) if c not in dataset.column_names]
    if missing:
        raise InputError(f"{source}: no column {', '.join(map(repr, missing))}; the columns are "
                         f"{', '.join(map(repr, dataset.column_names))}")
    ids = dataset[INDEX] if task is not None and INDEX in dataset.column_names else None
    dataset = dataset.remove_columns([c for c in dataset.column_names if c == EXAMPLE_ID])
    ds, bad = check_rows(((i + 1, r) for i, r in enumerate(dataset)), source, tuple(text_columns), label_column,
                         dataset.features, example_ids=ids)
    return InputTable(ds, tuple(text_columns), label_column, source, task, bad, dataset._fingerprint)


def _json_lines(path: Path):
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield number, BadRow(str(path), number, "bytes that are not UTF-8; re-encode the file as UTF-8")
                continue
            except json.JSONDecodeError as exc:
                yield number, BadRow(str(path), number, f"not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(row, dict):
                yield number, BadRow(str(path), number, "each line must be a JSON object")
                continue
            yield number, row


def _delimited(path: Path, delimiter: str):
    raw_lines = path.read_bytes()
    if raw_lines.startswith(b"\xef\xbb\xbf"):
        raw_lines = raw_lines[3:]
    try:
        text = raw_lines.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw_lines[:exc.start].count(b"\n") + 1
        raise InputError(f"{path}, line {line}: bytes that are not UTF-8; re-encode the file as UTF-8") from exc
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    # io.StringIO(newline="") splits lines on \n and \r only (str.splitlines would also split
    # inside a field on U+2028, U+0085, form feeds ...)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    header = next(reader, None)
    if not header:
        raise InputError(f"{path}: the file is empty; expected a header line with the column names")
    for fields in reader:
        number = reader.line_num
        if len(fields) != len(header):
            yield number, BadRow(str(path), number, f"expected {len(header)} fields ({', '.join(header)}), "
                                                    f"found {len(fields)}")
            continue
        yield number, dict(zip(header, fields))
