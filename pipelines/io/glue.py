"""GLUE files: a strict reader of the official TSV layouts (``tasks``), and the hub loader.

The layouts are those written by the GLUE ``download_glue_data.py`` script and read by every
GLUE processor with quoting off (a field runs from tab to tab; quotes are plain characters).
CoLA has no header; MRPC starts with a UTF-8 byte-order mark; MNLI has ``dev_matched`` and
``dev_mismatched``; QNLI, RTE, WNLI and STS-B start with an ``index`` column.

Every column is kept as the exact string of the file, except the label column, which becomes a
``ClassLabel`` with the GLUE label names (a float for STS-B), so that an augmented set can be
written back in the same layout (the label as the file writes it; an STS-B score as Python's
shortest float text, ``3.8`` for ``3.800``; no byte-order mark).

Not here: augmentation, and the hub loader's network access (``load_hub_split`` only calls
``datasets.load_dataset``).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Iterator

import datasets

from tinyaug.errors import InputError
from tinyaug.pipelines.io.schema import EXAMPLE_ID
from tinyaug.pipelines.io.tasks import TASKS, TaskSpec, get_task  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)



@dataclasses.dataclass(frozen=True)
class BadRow:
    """A row the reader refused: where it is and why."""

    path: str
    line: int  # 1-based line number in the file
    reason: str

    def __str__(self) -> str:
        return f"{self.path}, line {self.line}: {self.reason}"


def label_feature(task: TaskSpec) -> datasets.features.FeatureType:
    if task.label_names is None:
        return datasets.Value("float64")
    return datasets.ClassLabel(names=list(task.label_names))


def task_features(task: TaskSpec, split: str = "train") -> datasets.Features:
    """Every column a string, the label a ``ClassLabel`` (float64 for STS-B), plus the example id."""
    feats = {c: datasets.Value("string") for c in task.columns_for(split)}
    feats[task.label_column] = label_feature(task)
    feats[EXAMPLE_ID] = datasets.Value("int64")
    return datasets.Features(feats)


def iter_tsv_lines(path: Path, *, bom: bool) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, raw_line)`` for each line of ``path``, without the line break.

    A trailing empty line is not yielded (official files end with ``\\n``, CoLA dev without).
    """
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif bom:
        logger.debug("%s has no byte-order mark; reading it anyway", path)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        yield number, line[:-1] if line.endswith(b"\r") else line


def _parse_label(task: TaskSpec, value: str) -> int | float:
    """The stored label for a TSV value, or ``ValueError`` with the reason."""
    if task.label_encoding == "float":
        return float(value)
    assert task.label_names is not None
    if task.label_encoding == "name":
        if value in task.label_names:
            return task.label_names.index(value)
    elif value.isdigit() and int(value) < len(task.label_names):
        return int(value)
    allowed = task.label_names if task.label_encoding == "name" else range(len(task.label_names))
    raise ValueError(f"label {value!r} is not one of {', '.join(map(str, allowed))}")


def format_label(task: TaskSpec, value: int | float) -> str:
    """The TSV text for a stored label: the inverse of the reader."""
    if task.label_encoding == "float":
        return repr(float(value))
    assert task.label_names is not None
    return task.label_names[int(value)] if task.label_encoding == "name" else str(int(value))


def check_text(values: dict[str, str], text_columns: tuple[str, ...]) -> str | None:
    """The reason a row's text is unusable, or None."""
    for column in text_columns:
        value = values.get(column)
        if value is None or not value.strip():
            return f"empty text in column {column!r}"
    return None


def read_tsv(path: Path, task: TaskSpec, split: str = "train", *,
             skip_bad_rows: bool = False, limit: int | None = None,
             ) -> tuple[datasets.Dataset, list[BadRow]]:
    """Read one GLUE TSV strictly.

    Returns the dataset (see ``task_features``) and the rows skipped. Without ``skip_bad_rows``
    any bad row raises ``InputError`` naming the file and line; with it, bad rows are left out
    and returned. ``limit`` keeps the first ``limit`` good rows. The example id is the 0-based
    index of the data row in the file, so ids stay the same whether or not rows are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; a GLUE {task.folder} folder holds "
                         f"{task.train_file} and {', '.join(task.dev_files)}")
    columns = task.columns_for(split)
    rows: dict[str, list] = {c: [] for c in (*columns, EXAMPLE_ID)}
    bad: list[BadRow] = []
    lines = iter_tsv_lines(path, bom=task.bom)
    if task.header:
        first = next(lines, None)
        if first is None:
            raise InputError(f"{path}: the file is empty; expected a header line "
                             f"{chr(92)}t-separated: {', '.join(columns)}")
        header = first[1].decode("utf-8", errors="replace").split("\t")
        if tuple(header) != columns:
            raise InputError(f"{path}, line 1: header {header} is not the GLUE {task.folder} "
                             f"{split} header {list(columns)}; is this the right task?")
    kept = 0
    for data_index, (number, raw) in enumerate(lines):
        if limit is not None and kept >= limit:
            break
        reason = None
        try:
            fields = raw.decode("utf-8").split("\t")
        except UnicodeDecodeError as exc:
            fields, reason = [], f"bytes that are not UTF-8 at byte {exc.start} ({raw[exc.start:exc.start + 4]!r}); re-encode the file as UTF-8"
        if reason is None and len(fields) != len(columns):
            reason = (f"expected {len(columns)} tab-separated fields ({', '.join(columns)}), "
                      f"found {len(fields)}")
        values = dict(zip(columns, fields))
        if reason is None:
            reason = check_text(values, task.text_columns)
        label = None
        if reason is None:
            if not values[task.label_column].strip():
                reason = f"missing label in column {task.label_column!r}"
            else:
                try:
                    label = _parse_label(task, values[task.label_column])
                except ValueError as exc:
                    reason = f"column {task.label_column!r}: {exc}"
        if reason is not None:
            bad.append(BadRow(str(path), number, reason))
            continue
        values[task.label_column] = label
        for c in columns:
            rows[c].append(values[c])
        rows[EXAMPLE_ID].append(data_index)
        kept += 1
    if bad and not skip_bad_rows:
        more = f" ({len(bad) - 1} more bad rows)" if len(bad) > 1 else ""
        raise InputError(f"{bad[0]}{more}; fix the file or pass --skip-bad-rows to skip and count them")
    for row in bad:
        logger.warning("skipped %s", row)
    return datasets.Dataset.from_dict(rows, features=task_features(task, split)), bad


def task_file(data_dir: Path, task: TaskSpec, split: str = "train") -> Path:
    """The path of a split inside a GLUE data dir; accepts the task folder itself too."""
    data_dir = Path(data_dir)
    name = task.split_file(split)
    for candidate in (data_dir / task.folder / name, data_dir / name):
        if candidate.is_file():
            return candidate
    raise InputError(f"no {name} for {task.name} under {data_dir}: expected {data_dir / task.folder / name} "
                     f"(the layout of GLUE's download_glue_data.py); pass --data-dir to the folder that holds {task.folder}/")


def read_split(data_dir: Path, task: TaskSpec | str, split: str = "train", **kwargs
               ) -> tuple[datasets.Dataset, list[BadRow]]:
    """Read ``split`` of ``task`` from a GLUE data dir (``DIR/SST-2/train.tsv``)."""
    task = get_task(task) if isinstance(task, str) else task
    return read_tsv(task_file(data_dir, task, split), task, split, **kwargs)


def load_hub_split(task: TaskSpec, split: str = "train") -> datasets.Dataset:
    """Load a split from the ``nyu-mll/glue`` dataset on the Hugging Face hub (needs network).

    The hub dataset uses its own column names (``sentence``, ``sentence1``, ``question1``, ...,
    ``label``, ``idx``); they are renamed to this module's layout so the rest of the pipeline
    (and the TSV export) does not care where the rows came from.
    """
    hub_split = {"dev": "validation", "dev_matched": "validation_matched",
                 "dev_mismatched": "validation_mismatched"}.get(split, split)
    if task.name == "mnli" and hub_split == "validation":
        hub_split = "validation_matched"
    ds = datasets.load_dataset("nyu-mll/glue", task.hub_config, split=hub_split)
    hub_text = {"cola": ("sentence",), "sst2": ("sentence",), "mrpc": ("sentence1", "sentence2"),
                "stsb": ("sentence1", "sentence2"), "qqp": ("question1", "question2"),
                "mnli": ("premise", "hypothesis"), "qnli": ("question", "sentence"),
                "rte": ("sentence1", "sentence2"), "wnli": ("sentence1", "sentence2")}[task.name]
    renames = dict(zip(hub_text, task.text_columns))
    renames["label"] = task.label_column
    renames = {k: v for k, v in renames.items() if k != v}
    ds = ds.rename_columns(renames).rename_column("idx", EXAMPLE_ID)
    return ds.cast_column(task.label_column, label_feature(task))
