"""GLUE files: a strict reader of the official TSV layouts (``tasks``), and the hub loader.

The layouts are those written by the GLUE ``download_glue_data.py`` script and read by every
GLUE processor with quoting off (a field runs from tab to tab; quotes are plain characters).
CoLA has no header; MRPC starts with a UTF-8 byte-order mark; MNLI has ``dev_matched`` and
``dev_mismatched``; QNLI, RTE, WNLI and STS-B start with an ``index`` column.

Rows come out in the hub's schema (``tasks``): the text columns under the hub's names, ``label``
a ``ClassLabel`` with the GLUE label names (float32 for STS-B), ``idx`` (int32) and
``aug_example_id`` (int64) the 0-based data row of the file; the other file columns are dropped,
or kept as exact strings under ``source_<name>`` with ``keep_source_columns``. An augmented set
can be written back in the file layout (``augmentation.export``: the label as the file writes
it; an STS-B score as float32's shortest text, ``3.8`` for ``3.800``; no byte-order mark).

Not here: augmentation, and the hub loader's network access (``load_hub_split`` probes the hub,
then calls ``datasets.load_dataset``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path
from typing import Iterator

import datasets
import numpy as np

from tinyaug.errors import InputError
from tinyaug.pipelines.io.files import bounded_lines, refuse_special
from tinyaug.pipelines.io.schema import EXAMPLE_ID
from tinyaug.tasks import (INDEX, LABEL, TASKS, TaskSpec, get_task,  # noqa: F401 (re-exported)
                                        source_column)

logger = logging.getLogger(__name__)

HUB_GLUE = "nyu-mll/glue"  # the hub dataset --from-hub reads


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
        return datasets.Value("float32")
    return datasets.ClassLabel(names=list(task.label_names))


def task_features(task: TaskSpec, split: str = "train", keep_source_columns: bool = False) -> datasets.Features:
    """The hub's schema (text columns, ``label``, ``idx``), then the kept file columns as
    strings, then ``aug_example_id``."""
    feats = {c: datasets.Value("string") for c in task.text_columns}
    feats[LABEL] = label_feature(task)
    feats[INDEX] = datasets.Value("int32")
    if keep_source_columns:
        feats.update({source_column(c): datasets.Value("string") for c in task.source_columns(split)})
    feats[EXAMPLE_ID] = datasets.Value("int64")
    return datasets.Features(feats)


def iter_tsv_lines(path: Path, *, bom: bool) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, raw_line)`` for each line of ``path``, without the line break.

    A trailing empty line is not yielded (official files end with ``\\n``, CoLA dev without).
    """
    refuse_special(path)
    with path.open("rb") as handle:
        if bom and not handle.peek(3)[:3] == b"\xef\xbb\xbf":
            logger.debug("%s has no byte-order mark; reading it anyway", path)
        for number, line in bounded_lines(handle, path):  # one line at a time, never the whole file
            line = line[:-1] if line.endswith(b"\n") else line
            yield number, line[:-1] if line.endswith(b"\r") else line


def _parse_label(task: TaskSpec, value: str) -> int | float:
    """The stored label for a TSV value, or ``ValueError`` with the reason."""
    if task.label_encoding == "float":
        score = float(value)
        if not 0.0 <= score <= 5.0:  # NaN fails both comparisons
            raise ValueError(f"score {value!r} is not a similarity between 0 and 5")
        return score
    assert task.label_names is not None
    if task.label_encoding == "name":
        if value in task.label_names:
            return task.label_names.index(value)
    elif value.isdigit() and int(value) < len(task.label_names):
        return int(value)
    allowed = task.label_names if task.label_encoding == "name" else range(len(task.label_names))
    raise ValueError(f"label {value!r} is not one of {', '.join(map(str, allowed))}")


def format_label(task: TaskSpec, value: int | float) -> str:
    """The TSV text for a stored label: the inverse of the reader (an STS-B score as the
    shortest text that reads back as the same float32: ``3.8``)."""
    if task.label_encoding == "float":
        return str(np.float32(value))
    assert task.label_names is not None
    return task.label_names[int(value)] if task.label_encoding == "name" else str(int(value))


def check_text(values: dict[str, str], text_columns: tuple[str, ...]) -> str | None:
    """The reason a row's text is unusable, or None."""
    for column in text_columns:
        value = values.get(column)
        if value is None or not value.strip():
            return f"empty text in column {column!r}"
    return None


def read_tsv(path: Path, task: TaskSpec, split: str = "train", *, skip_bad_rows: bool = False,
             limit: int | None = None, keep_source_columns: bool = False,
             ) -> tuple[datasets.Dataset, list[BadRow]]:
    """Read one GLUE TSV strictly, into the hub's schema (``task_features``).

    Returns the dataset and the rows skipped. Without ``skip_bad_rows`` any bad row raises
    ``InputError`` naming the file and line; with it, bad rows are left out and returned.
    ``limit`` keeps the first ``limit`` good rows. ``idx`` and ``aug_example_id`` are the 0-based
    index of the data row in the file, so they stay the same whether or not rows are skipped.
    """
    path = Path(path)
    refuse_special(path)
    if path.is_dir():
        raise InputError(f"{path}: a folder where a GLUE file was expected; pass --data-dir to the folder "
                         f"that holds {task.folder}/")
    if not path.is_file():
        raise InputError(f"{path}: no such file; a GLUE {task.folder} folder holds "
                         f"{task.train_file} and {', '.join(task.dev_files)}")
    columns = task.tsv_columns_for(split)
    features = task_features(task, split, keep_source_columns)
    rows: dict[str, list] = {c: [] for c in features}
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
            reason = check_text(values, task.tsv_text_columns)
        label = None
        if reason is None:
            if not values[task.tsv_label_column].strip():
                reason = f"missing label in column {task.tsv_label_column!r}"
            else:
                try:
                    label = _parse_label(task, values[task.tsv_label_column])
                except ValueError as exc:
                    reason = f"column {task.tsv_label_column!r}: {exc}"
        if reason is not None:
            bad.append(BadRow(str(path), number, reason))
            continue
        for column in columns:
            name = task.dataset_column(column)
            if name in rows:
                rows[name].append(label if name == LABEL else values[column])
        rows[INDEX].append(data_index)
        rows[EXAMPLE_ID].append(data_index)
        kept += 1
    if bad and not skip_bad_rows:
        more = f" ({len(bad) - 1} more bad rows)" if len(bad) > 1 else ""
        raise InputError(f"{bad[0]}{more}; fix the file or pass --skip-bad-rows to skip and count them")
    for row in bad:
        logger.warning("skipped %s", row)
    return datasets.Dataset.from_dict(rows, features=features), bad


def task_file(data_dir: Path, task: TaskSpec, split: str = "train") -> Path:
    """The path of a split inside a GLUE data dir; accepts the task folder itself too."""
    data_dir = Path(data_dir)
    name = task.split_file(split)
    for candidate in (data_dir / task.folder / name, data_dir / name):
        refuse_special(candidate)
        if candidate.is_file():
            return candidate
        if candidate.is_dir():
            raise InputError(f"{candidate} is a folder; a GLUE {task.folder} folder holds the file {name}")
    raise InputError(f"no {name} for {task.name} under {data_dir}: expected {data_dir / task.folder / name} "
                     f"(the layout of GLUE's download_glue_data.py); pass --data-dir to the folder that holds {task.folder}/")


def read_split(data_dir: Path, task: TaskSpec | str, split: str = "train", **kwargs
               ) -> tuple[datasets.Dataset, list[BadRow]]:
    """Read ``split`` of ``task`` from a GLUE data dir (``DIR/SST-2/train.tsv``)."""
    task = get_task(task) if isinstance(task, str) else task
    return read_tsv(task_file(data_dir, task, split), task, split, **kwargs)


def load_hub_split(task: TaskSpec, split: str = "train") -> datasets.Dataset:
    """Load a split from the ``nyu-mll/glue`` dataset on the Hugging Face hub (needs network, or
    the split in the local Hugging Face cache).

    Its schema is the one every GLUE dataset here uses; ``aug_example_id`` is added from ``idx``
    (the row), so that the hub and the TSV give the same rows. The hub is probed first
    (``network.hub_reachable``): offline, only the cache is read, and a split not in it fails at
    once with one line naming the offline inputs, instead of a minute of retries.
    """
    from tinyaug.pipelines.io import network

    hub_split = {"dev": "validation", "dev_matched": "validation_matched",
                 "dev_mismatched": "validation_mismatched"}.get(split, split)
    if task.name == "mnli" and hub_split == "validation":
        hub_split = "validation_matched"
    source = f"{HUB_GLUE} {task.hub_config} {hub_split}"
    online = network.hub_reachable()
    try:
        with _hub_offline(not online):
            ds = datasets.load_dataset(HUB_GLUE, task.hub_config, split=hub_split)
    except (ConnectionError, OSError) as exc:  # requests' errors and FileNotFoundError are OSErrors
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        where = f"cannot be loaded from the hub ({detail})" if online else \
            "is not in the Hugging Face cache, and the hub cannot be reached (offline?)"
        name = task.split_file(split) if split in ("train", "dev") else f"{split}.tsv"
        raise InputError(f"{source} {where}; pass --data-dir to a GLUE data folder "
                         f"(DIR/{task.folder}/{name}), or leave out --from-hub to use the embedded GLUE sample") from None
    return from_hub_schema(ds, task, source)


@contextlib.contextmanager
def _hub_offline(offline: bool) -> Iterator[None]:
    """``datasets`` in offline mode (cache only, no retries) while the block runs, when ``offline``."""
    previous = datasets.config.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = previous or offline
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE = previous


def from_hub_schema(ds: datasets.Dataset, task: TaskSpec, source: str) -> datasets.Dataset:
    """A dataset in the hub's schema, checked, with ``aug_example_id`` from ``idx``."""
    expected = [*task.text_columns, LABEL, INDEX]
    missing = [c for c in expected if c not in ds.column_names]
    if missing:
        raise InputError(f"{source}: no column {', '.join(map(repr, missing))} (found "
                         f"{', '.join(map(repr, ds.column_names))}); expected the nyu-mll/glue {task.name} schema")
    ds = ds.select_columns(expected)
    ds = ds.add_column(EXAMPLE_ID, [int(i) for i in ds[INDEX]])
    return ds.cast(task_features(task))
