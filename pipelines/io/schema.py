"""The dataset schema: every column tinyaug adds, their ``Features``, and the metadata it records.

An augmented dataset holds its source's columns plus provenance:

- ``aug_example_id`` (int64): the 0-based row of the source, which seeds the example's draws;
- ``aug_variant`` (int32): 0 for the original row, 1, 2, ... for its variants;
- ``aug_changes``: one record per edit (column, word index, character span in the original,
  original and replacement as written, the source that proposed it (``mlm``, ``vectors``,
  ``wordnet``, ``random``, ``eda``, ...), its candidate rank (0 = best, -1 unranked), its kind
  (``replace``, ``insert``, ``delete``, ``swap``) and the composition step that made it).
  Datasets written before ``kind`` and ``step`` existed hold only replacements by step 0
  (``CHANGE_DEFAULTS``).

``tinyaug teacher-logits`` adds ``teacher_logits`` (list of float32 in the task's label order;
one score for STS-B), ``teacher_label`` (the prediction, typed as ``label``), ``teacher_confidence``
and ``teacher_flip`` (the prediction differs from the one on the row's original), and describes
them in ``teacher_logits.json`` inside the dataset folder.

The recipe, model identifiers and statistics are stored as JSON under the key ``"tinyaug"`` of
the dataset's ``info.description``, which ``save_to_disk`` keeps and every reader can see.

``check_columns`` refuses, in one line, a dataset whose columns of these names hold something
else (a dataset tinyaug did not write); every command that reads a dataset calls it.

Not here: reading inputs (``glue``, ``tables``), writing folders (``storage``).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import datasets
import pyarrow as pa

from tinyaug.errors import InputError

EXAMPLE_ID = "aug_example_id"
VARIANT = "aug_variant"
CHANGES = "aug_changes"
PROVENANCE_COLUMNS = (EXAMPLE_ID, VARIANT, CHANGES)
TEACHER_LOGITS = "teacher_logits"
TEACHER_LABEL = "teacher_label"  # the teacher's prediction, typed as the label (ClassLabel, or float for STS-B)
TEACHER_CONFIDENCE = "teacher_confidence"  # float32: the predicted class's probability (NaN for regression)
TEACHER_FLIP = "teacher_flip"  # bool: the prediction differs from the one on the row's original
TEACHER_COLUMNS = (TEACHER_LOGITS, TEACHER_LABEL, TEACHER_CONFIDENCE, TEACHER_FLIP)
TEACHER_LOGITS_INFO = "teacher_logits.json"  # inside the dataset folder, beside the column
CARD_FILE = "README.md"  # the dataset card beside the data
METADATA_KEY = "tinyaug"

CHANGE_FEATURE = [{
    "column": datasets.Value("string"), "word_index": datasets.Value("int32"),
    "start": datasets.Value("int32"), "end": datasets.Value("int32"),
    "original": datasets.Value("string"), "replacement": datasets.Value("string"),
    "source": datasets.Value("string"), "rank": datasets.Value("int32"),
    "kind": datasets.Value("string"), "step": datasets.Value("int32"),
}]
CHANGE_DEFAULTS = {"kind": "replace", "step": 0}  # fields that datasets written before them lack


def augmented_features(source: datasets.Features) -> datasets.Features:
    """The source's features (with ``aug_example_id``) plus the variant and change columns."""
    return datasets.Features({**source, VARIANT: datasets.Value("int32"), CHANGES: CHANGE_FEATURE})


def _kind(arrow_type: pa.DataType) -> Any:
    """What a column holds, up to the width of its numbers: ``"integer"``, ``"float"``, ``"bool"``,
    ``"string"``, ``("list", kind)`` or ``("record", {field: kind})``."""
    t = pa.types
    if t.is_integer(arrow_type):
        return "integer"
    if t.is_floating(arrow_type):
        return "float"
    if t.is_boolean(arrow_type):
        return "bool"
    if t.is_string(arrow_type) or t.is_large_string(arrow_type):
        return "string"
    if t.is_list(arrow_type) or t.is_large_list(arrow_type) or t.is_fixed_size_list(arrow_type):
        return ("list", _kind(arrow_type.value_type))
    if t.is_struct(arrow_type):
        return ("record", {arrow_type.field(i).name: _kind(arrow_type.field(i).type)
                           for i in range(arrow_type.num_fields)})
    return str(arrow_type)


def _fits(found: Any, expected: Any) -> bool:
    """``found`` holds what ``expected`` does (a record may have more fields)."""
    if isinstance(expected, tuple) and isinstance(found, tuple) and found[0] == expected[0]:
        if expected[0] == "list":
            return _fits(found[1], expected[1])
        return all(name in found[1] and _fits(found[1][name], kind) for name, kind in expected[1].items())
    return found == expected


def _say(kind: Any) -> str:
    if isinstance(kind, tuple):
        return f"a list of {_say(kind[1])}" if kind[0] == "list" else f"records ({', '.join(kind[1])})"
    return {"integer": "integers", "float": "floats", "bool": "booleans", "string": "text"}.get(kind, kind)


def expected_kinds() -> dict[str, list[Any]]:
    """What each column tinyaug adds may hold (from ``augmented_features`` and the teacher's
    columns): ``{"aug_variant": ["integer"], ...}``; the teacher's label is a class or a score."""
    written = augmented_features(datasets.Features({EXAMPLE_ID: datasets.Value("int64")}))
    written[TEACHER_LOGITS] = teacher_logits_feature()
    written[TEACHER_CONFIDENCE], written[TEACHER_FLIP] = datasets.Value("float32"), datasets.Value("bool")
    kinds = {field.name: [_kind(field.type)] for field in written.arrow_schema}
    for name in CHANGE_DEFAULTS:  # datasets written before these fields lack them
        kinds[CHANGES][0][1][1].pop(name, None)
    kinds[TEACHER_LABEL] = ["integer", "float"]
    return kinds


def check_columns(ds: datasets.Dataset, where: str, *, need: Sequence[str] = (), purpose: str = "") -> None:
    """Refuse, in one ``InputError`` line, a dataset that lacks a column of ``need`` or whose
    provenance or teacher columns (when present) hold something else than tinyaug writes there,
    e.g. an ``aug_variant`` of text: such a dataset was not written by tinyaug, or was changed
    since. ``purpose`` ends the message (what the command needs the columns for)."""
    kinds = expected_kinds()
    found = {field.name: _kind(field.type) for field in ds.data.schema}
    problems = []
    for name, allowed in kinds.items():
        if name in found and not any(_fits(found[name], kind) for kind in allowed):
            problems.append(f"column {name!r} holds {_say(found[name])}, not {' or '.join(map(_say, allowed))}")
    missing = [name for name in need if name not in found]
    if problems:
        raise InputError(f"{where}: {'; '.join(problems)}: the dataset was not written by tinyaug or was changed "
                         "since; drop or rename those columns, or rebuild it with tinyaug")
    if missing:
        raise InputError(f"{where}: no {', '.join(missing)} column{'s' if len(missing) > 1 else ''}: not a dataset "
                         f"written by tinyaug augment" + (f"; {purpose}" if purpose else ""))


def teacher_logits_feature() -> Any:
    """A list of float32 (``datasets.List`` where this ``datasets`` version has it)."""
    return getattr(datasets, "List", datasets.Sequence)(datasets.Value("float32"))


def metadata_description(metadata: dict[str, Any]) -> str:
    """The ``info.description`` text that records ``metadata``."""
    return json.dumps({METADATA_KEY: metadata})


def read_metadata(ds: datasets.Dataset) -> dict[str, Any]:
    """The tinyaug metadata of a dataset (``{}`` for a dataset tinyaug did not make)."""
    try:
        return json.loads(ds.info.description or "{}").get(METADATA_KEY, {})
    except (json.JSONDecodeError, AttributeError):
        return {}


def with_metadata(ds: datasets.Dataset, key: str, value: Any) -> datasets.Dataset:
    """Record ``value`` under ``{"tinyaug": {key: ...}}`` in ``ds``'s description (in place); a
    description that is not tinyaug's JSON is left alone."""
    text = ds.info.description or ""
    try:
        meta = json.loads(text) if text.strip() else {}
    except ValueError:
        return ds
    if not isinstance(meta, dict):
        return ds
    meta.setdefault(METADATA_KEY, {})[key] = value
    ds.info.description = json.dumps(meta)
    return ds
