"""Inputs: a GLUE task (a data dir, the embedded sample, or the hub) or any table of text.

Tables: a dataset saved with ``save_to_disk``, Parquet, JSON Lines, CSV, or TSV with a header
(read with quoting off, as GLUE files are). Every reader checks what the augmenter relies on:
the text columns exist and hold non-empty strings, and the label column (if any) has a value
in every row (a string or a finite number: never empty, ``NaN`` or ``inf``). A bad row is an
``InputError`` naming the file, line and column, or, with ``skip_bad_rows``, a counted skip. Files
are read one bounded line at a time (``files``: special files refused, the line and field limits);
a column name given twice in a file, a label that is also a text column, and a Parquet column
``datasets`` cannot hold that was asked for are refused by name (one it was not asked for is left out).

Every example gets a stable id, ``aug_example_id``: its 0-based row in the source, so that the
generator of each example, and so its rows, do not depend on limits, skips or shards.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import json
import logging
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

import datasets
import pyarrow as pa

from tinyaug.errors import InputError
from tinyaug.pipelines.io import glue
from tinyaug.pipelines.io.files import MAX_FIELD_CHARS, bounded_lines, refuse_special
from tinyaug.pipelines.io.glue import BadRow, TaskSpec
from tinyaug.pipelines.io.rows import without_empty_texts
from tinyaug.pipelines.io.schema import EXAMPLE_ID
from tinyaug.tasks import INDEX, TASKS

logger = logging.getLogger(__name__)

SAMPLE_TASKS = tuple(name for name, task in TASKS.items() if task.in_sample)  # in tinyaug/resources/glue_sample


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
            source = f"nyu-mll/glue {spec.hub_config} {split} (hub)"
            ds, bad = without_empty_texts(ds, spec.text_columns, source)  # skipped, and counted in the card
            return InputTable(ds, spec.text_columns, spec.label_column, source, spec, bad, f"hub|{spec.name}|{split}")
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
    refuse_special(path)
    if spec is not None and path.suffix == ".tsv":
        ds, bad = glue.read_tsv(path, spec, split, skip_bad_rows=skip_bad_rows, limit=limit,
                                keep_source_columns=keep_source_columns)
        return InputTable(ds, spec.text_columns, spec.label_column, str(path), spec, bad, _fingerprint(path))
    columns = tuple(text_columns) or (spec.text_columns if spec else ())
    label = label_column if label_column is not None else (spec.label_column if spec else None)
    if not columns:
        raise InputError(f"{path}: say which columns hold the text with --text-columns (e.g. --text-columns sentence)")
    check_column_choice(columns, label)
    ds, bad = read_table(path, columns, label, skip_bad_rows=skip_bad_rows, limit=limit)
    return InputTable(ds, columns, label, str(path), None, bad,
                      _fingerprint(path if path.is_file() else path / "state.json"))


def check_column_choice(text_columns: Sequence[str], label_column: str | None) -> None:
    """Refuse a text column named twice, or a label column that is also a text column."""
    twice = [c for c, n in collections.Counter(text_columns).items() if n > 1]
    if twice:
        raise InputError(f"--text-columns names {twice[0]!r} twice; name each text column once")
    if label_column is not None and label_column in text_columns:
        raise InputError(f"--label-column {label_column!r} is also one of --text-columns; the label must be "
                         "its own column (choose another --label-column, or leave it out)")


def _refuse_duplicates(path: Path | str, names: Sequence[str], where: str = "") -> None:
    twice = [c for c, n in collections.Counter(names).items() if n > 1]
    if twice:
        raise InputError(f"{path}{where}: the column name {twice[0]!r} appears {names.count(twice[0])} times; "
                         "rename the copies so that every column has its own name")


def read_table(path: Path, text_columns: tuple[str, ...], label_column: str | None, *,
               skip_bad_rows: bool = False, limit: int | None = None) -> tuple[datasets.Dataset, list[BadRow]]:
    """Read a table file or a ``save_to_disk`` folder and check its rows."""
    if path.is_dir():
        if not (path / "state.json").is_file() and not (path / "dataset_dict.json").is_file():
            raise InputError(f"{path}: a folder must be a dataset saved with save_to_disk (state.json missing)")
        try:
            loaded = datasets.load_from_disk(str(path))
        except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError, pa.ArrowException) as exc:
            raise InputError(f"{path}: not a readable save_to_disk dataset ({_first_line(exc)}); "
                             "save it again with Dataset.save_to_disk") from exc
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
            rows, features = _parquet(path, text_columns, label_column)
            where = "row"
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
        if reason is None and label_column:
            reason = label_problem(row[label_column], label_column)
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
    full = datasets.Features({**features, EXAMPLE_ID: datasets.Value("int64")}) if features is not None else None
    try:
        ds = datasets.Dataset.from_list([{c: r.get(c) for c in columns} for r in kept], features=full)
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
        raise InputError(_explain_columns(path, kept, columns, exc)) from exc
    if label_column and kept and isinstance(kept[0][label_column], str):
        ds = ds.class_encode_column(label_column)  # string labels -> ClassLabel (sorted names)
    return ds, bad


def label_problem(value: Any, column: str) -> str | None:
    """Why ``value`` cannot be a label, or None: a label is a string or a finite number; empty,
    ``NaN``, ``inf`` (as numbers or as text) and lists or records are refused, so that they never
    become classes. ``float("nan")`` -> ``"label nan in column 'label' is not a finite number"``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return f"missing label in column {column!r}"
    if not isinstance(value, (str, int, float)):
        return f"column {column!r} holds {type(value).__name__}, not a label (a string or a number)"
    try:
        finite = isinstance(value, int) or math.isfinite(float(value))
    except (ValueError, OverflowError):
        finite = True  # text that is not a number: a class name
    return None if finite else (f"label {value!r} in column {column!r} is not a finite number; "
                                "fix it or leave the row out")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _explain_columns(path: str, rows: list[dict[str, Any]], columns: list[str], exc: BaseException) -> str:
    """The message for rows that Arrow cannot hold: which column, and what it holds."""
    for column in columns:
        try:
            pa.array([r.get(column) for r in rows])
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as column_exc:
            kinds = sorted({type(r.get(column)).__name__ for r in rows if r.get(column) is not None})
            return (f"{path}: column {column!r} cannot be stored ({_first_line(column_exc)}; it holds "
                    f"{', '.join(kinds)}); give it one kind of value in every row, or remove it")
    return f"{path}: the rows cannot be stored as a dataset ({_first_line(exc)})"


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


_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")  # a JSON escape of half a UTF-16 pair
_BREAKS = re.compile(r"(?<=\r)(?!\n)")  # after a lone \r: csv splits lines on \n, \r\n and \r


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"the key {twice!r} appears twice in one object")
    return dict(pairs)


def _json_lines(path: Path) -> Iterable[tuple[int, Any]]:
    with path.open("rb") as f:
        for number, raw in bounded_lines(f, path):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
                if _SURROGATE.search(raw):
                    json.dumps(row, ensure_ascii=False).encode("utf-8")
            except UnicodeDecodeError:
                yield number, BadRow(str(path), number, "bytes that are not UTF-8; re-encode the file as UTF-8")
                continue
            except UnicodeEncodeError:
                yield number, BadRow(str(path), number, "a \\ud800-\\udfff escape that is half a character; "
                                                        "write the character itself")
                continue
            except json.JSONDecodeError as exc:
                yield number, BadRow(str(path), number, f"not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            except (ValueError, RecursionError) as exc:  # duplicate keys, huge integers, deep nesting
                yield number, BadRow(str(path), number, f"not usable JSON ({_first_line(exc)})")
                continue
            if not isinstance(row, dict):
                yield number, BadRow(str(path), number, "each line must be a JSON object")
                continue
            yield number, row


def _text_pieces(path: Path) -> Iterable[str]:
    """The file's lines as text, read one at a time (bounded), split as ``csv`` expects."""
    with path.open("rb") as f:
        for number, raw in bounded_lines(f, path):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}, line {number}: bytes that are not UTF-8; re-encode the file as UTF-8") from exc
            # a lone \r ends a line too (str.splitlines would also split inside a field on U+2028, U+0085, ...)
            yield from (piece for piece in _BREAKS.split(text) if piece)


def _delimited(path: Path, delimiter: str) -> Iterable[tuple[int, Any]]:
    csv.field_size_limit(MAX_FIELD_CHARS)  # the documented limit (the module's default is 128 KiB)
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(_text_pieces(path), delimiter=delimiter, quoting=quoting)
    header: list[str] | None = None
    while True:
        start = reader.line_num + 1  # a quoted field may run over several lines: name the first
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            why = (f"a field longer than {MAX_FIELD_CHARS:,} characters (the limit for one field)"
                   if "field limit" in str(exc) else str(exc))
            raise InputError(f"{path}, line {start}: {why}; check the quoting, or split the text") from exc
        if header is None:
            if not fields:
                break
            header = fields
            _refuse_duplicates(path, header, ", line 1")
        elif len(fields) != len(header):
            yield start, BadRow(str(path), start, f"expected {len(header)} fields ({', '.join(header)}), "
                                                  f"found {len(fields)}")
        else:
            yield start, dict(zip(header, fields))
    if not header:
        raise InputError(f"{path}: the file is empty; expected a header line with the column names")


def _parquet(path: Path, text_columns: tuple[str, ...], label_column: str | None
             ) -> tuple[Iterable[tuple[int, Any]], datasets.Features]:
    """Rows of a Parquet file and their features, reading only the columns ``datasets`` can hold:
    a selected column it cannot hold (a map, a union, ...) is an ``InputError``, another one is
    left out with a warning."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({_first_line(exc)})") from exc
    _refuse_duplicates(path, schema.names)
    wanted = {*text_columns, *([label_column] if label_column else [])}
    keep = []
    for field in schema:
        try:
            datasets.features.features.generate_from_arrow_type(field.type)
        except (ValueError, NotImplementedError, TypeError):
            if field.name in wanted:
                raise InputError(f"{path}: column {field.name!r} has the Arrow type {field.type}, which datasets "
                                 "cannot hold; store it as text or numbers") from None
            logger.warning("%s: leaving out column %r (Arrow type %s, which datasets cannot hold)",
                           path, field.name, field.type)
            continue
        keep.append(field.name)
    kept_schema = pa.schema([schema.field(n) for n in keep], metadata=schema.metadata)
    try:
        features = datasets.Features.from_arrow_schema(kept_schema)
    except (ValueError, KeyError, TypeError):  # odd "huggingface" metadata: the Arrow types alone
        features = datasets.Features.from_arrow_schema(kept_schema.remove_metadata())

    def rows() -> Iterable[tuple[int, Any]]:
        number = 0
        try:
            for batch in parquet.iter_batches(batch_size=1024, columns=keep):
                for row in batch.to_pylist():
                    number += 1
                    yield number, row
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise InputError(f"{path}, row {number + 1}: cannot read it ({_first_line(exc)})") from exc

    return rows(), features
