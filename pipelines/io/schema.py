"""The dataset schema: every column tinyaug adds, their ``Features``, and the metadata it records.

An augmented dataset holds its source's columns plus provenance:

- ``aug_example_id`` (int64): the 0-based row of the source, which seeds the example's draws;
- ``aug_variant`` (int32): 0 for the original row, 1, 2, ... for its variants;
- ``aug_changes``: one record per replaced word (column, word index, character span in the
  original, original and replacement as written, source ``mlm``/``vectors``, candidate rank).

``tinyaug teacher-logits`` adds ``teacher_logits`` (list of float32 in the task's label order;
one score for STS-B), ``teacher_label`` (the prediction, typed as ``label``), ``teacher_confidence``
and ``teacher_flip`` (the prediction differs from the one on the row's original), and describes
them in ``teacher_logits.json`` inside the dataset folder.

The recipe, model identifiers and statistics are stored as JSON under the key ``"tinyaug"`` of
the dataset's ``info.description``, which ``save_to_disk`` keeps and every reader can see.

Not here: reading inputs (``glue``, ``tables``), writing folders (``storage``).
"""

from __future__ import annotations

import json
from typing import Any

import datasets

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
}]


def augmented_features(source: datasets.Features) -> datasets.Features:
    """The source's features (with ``aug_example_id``) plus the variant and change columns."""
    return datasets.Features({**source, VARIANT: datasets.Value("int32"), CHANGES: CHANGE_FEATURE})


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
