"""Label policies on a labelled augmented dataset: ``tinyaug filter`` and ``export --labels``.

A policy (``tinyaug.distill.variants.LabelPolicy``) keeps the originals and the variants the
teacher agrees with or is confident about, and says whether kept variants carry the copied gold
label or the teacher's. The result is a new dataset; the unfiltered one stays. Its metadata and
card say which policy made it, how many rows each rule dropped, and how many were relabelled.

Not here: the policy's rules (``tinyaug.distill.variants``), the teacher's columns
(``tinyaug.pipelines.distillation.teacher``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
import numpy as np

from tinyaug.distill.variants import LabelPolicy
from tinyaug.errors import InputError
from tinyaug.pipelines.augmentation.build import load_augmented
from tinyaug.pipelines.augmentation.card import render_card
from tinyaug.pipelines.io.rows import column_values
from tinyaug.pipelines.io.schema import (CARD_FILE, TEACHER_CONFIDENCE, TEACHER_FLIP, TEACHER_LABEL,
                                         TEACHER_LOGITS_INFO, VARIANT, check_columns, read_metadata, with_metadata)
from tinyaug.pipelines.io.outputs import TINYAUG_DATASET, check_output, is_tinyaug_dataset
from tinyaug.pipelines.io.storage import save_dataset

NEEDED = (TEACHER_LABEL, TEACHER_CONFIDENCE, TEACHER_FLIP, VARIANT)


def check_teacher_columns(ds: datasets.Dataset, where: str) -> None:
    """Refuse a dataset without augmented variants or the teacher's predictions on them."""
    check_columns(ds, where, need=(VARIANT,), purpose="label policies keep or relabel the variants tinyaug "
                  "augment wrote (aug_variant 0 is the original)")
    missing = [c for c in NEEDED if c not in ds.column_names]
    if missing:
        task = read_metadata(ds).get("task") or "TASK"
        raise InputError(f"{where}: no {', '.join(missing)} column; label the rows first with "
                         f"`tinyaug teacher-logits --teacher DIR --data {where} --task {task}`")


def with_teacher_labels(ds: datasets.Dataset) -> tuple[datasets.Dataset, int]:
    """``ds`` with each variant's ``label`` replaced by the teacher's prediction (originals keep
    their gold label), and how many labels changed."""
    relabelled, changed = _relabelled(ds)
    return relabelled, int(changed.sum())


def _relabelled(ds: datasets.Dataset) -> tuple[datasets.Dataset, np.ndarray]:
    if getattr(ds, "_indices", None) is not None:  # a selection: adding a column to it would flatten it
        ds = ds.flatten_indices(keep_in_memory=True)  # into a cache-*.arrow beside the source's data
    meta = read_metadata(ds)
    column = meta.get("label_column") or "label"
    if column not in ds.column_names:
        raise InputError(f"the dataset has no label column {column!r} to replace")
    gold, teacher = column_values(ds, column), column_values(ds, TEACHER_LABEL)
    new = np.where(column_values(ds, VARIANT) > 0, teacher, gold)
    changed = new != gold
    features = ds.features
    relabelled = ds.remove_columns(column).add_column(column, new.tolist(), feature=features[column])
    relabelled = relabelled.select_columns(list(ds.column_names))  # the column back in its place
    relabelled.info.description = ds.info.description
    return relabelled, changed


def apply_policy(ds: datasets.Dataset, policy: LabelPolicy, source: str) -> tuple[datasets.Dataset, dict[str, Any]]:
    """The rows ``policy`` keeps (relabelled if it says so) and its report."""
    check_teacher_columns(ds, source)
    keep, dropped = policy.select(column_values(ds, VARIANT), column_values(ds, TEACHER_FLIP),
                                  column_values(ds, TEACHER_CONFIDENCE, np.float64))
    rows = np.flatnonzero(keep)
    relabelled = 0
    if policy.labels == "teacher":  # relabel all rows, then select: nothing is written beside the source
        ds, changed = _relabelled(ds)
        relabelled = int(changed[rows].sum())
    kept = ds.select(rows)
    report = {**policy.to_dict(), "source": source, "rows_in": len(ds), "rows_out": len(kept),
              "dropped": dropped, "relabelled": relabelled}
    return with_metadata(kept, "label_policy", report), report


def filter_dataset(data: str | Path, out: str | Path, policy: LabelPolicy, *, overwrite: bool = False) -> dict[str, Any]:
    """Write the rows of the dataset at ``data`` that ``policy`` keeps to ``out``; ``data`` stays."""
    out = check_output(out, command="filter", what=TINYAUG_DATASET, inputs=[("DATASET", data)],
                       overwrite=overwrite, replaceable=is_tinyaug_dataset)
    data = Path(data).resolve()
    ds = load_augmented(data)
    kept, report = apply_policy(ds, policy, str(data))
    files: dict[str, Any] = {}
    if (data / TEACHER_LOGITS_INFO).is_file():
        files[TEACHER_LOGITS_INFO] = (data / TEACHER_LOGITS_INFO).read_text(encoding="utf-8")
    metadata = read_metadata(kept)
    if metadata.get("recipe"):
        files[CARD_FILE] = render_card(metadata)
    save_dataset(kept, out, files)
    return {**report, "out": str(out)}
