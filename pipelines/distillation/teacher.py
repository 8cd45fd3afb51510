"""``teacher_logits``: store the teacher's logits as a column of an augmented dataset.

The column ``teacher_logits`` (float32, in the task's label order; one score for STS-B) and its
description ``teacher_logits.json`` are written together, atomically (``io.storage``).

Not here: distillation (``distill``), which reads them in stage 2.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from tinyaug.distill.collator import TextCollator
from tinyaug.distill.inference import predict_logits
from tinyaug.distill.metrics import compute_metrics
from tinyaug.distill.recipe import default_max_seq_length
from tinyaug.pipelines.distillation.loading import load_task_dataset, load_task_model, load_tokenizer
from tinyaug.pipelines.io.glue import get_task
from tinyaug.pipelines.io.models import resolve_device
from tinyaug.pipelines.io.schema import TEACHER_LOGITS, TEACHER_LOGITS_INFO, teacher_logits_feature, with_metadata
from tinyaug.pipelines.io.storage import save_dataset

logger = logging.getLogger(__name__)


def teacher_logits(teacher: str | Path, data: str | Path, task: str, *, out: str | Path | None = None,
                   batch_size: int = 64, max_seq_length: int | None = None,
                   device: str = "auto") -> dict[str, Any]:
    """Add the teacher's logits as column ``teacher_logits`` to the dataset at ``data`` (or write
    the result to ``out``), atomically. Logits are stored in the task's label order (aligned by
    label name with the teacher's ``id2label``); STS-B stores one score per row."""
    spec = get_task(task)
    max_length = max_seq_length or default_max_seq_length(spec.name)
    target = resolve_device(device)
    ds = load_task_dataset(data, spec)
    model, permutation = load_task_model(teacher, spec, "teacher")
    tokenizer = load_tokenizer(teacher, "teacher tokenizer")
    collator = TextCollator(tokenizer, spec.text_columns, max_length)
    logits = predict_logits(model, collator, ds.select_columns(list(spec.text_columns)),
                            batch_size=batch_size, device=target, permutation=permutation)
    agreement = compute_metrics(spec.name, logits, np.asarray(ds[spec.label_column]))
    if TEACHER_LOGITS in ds.column_names:
        logger.info("replacing the existing %s column of %s", TEACHER_LOGITS, data)
        ds = ds.remove_columns(TEACHER_LOGITS)
    ds = ds.add_column(TEACHER_LOGITS, logits.tolist(), feature=teacher_logits_feature())
    info = {"column": TEACHER_LOGITS, "task": spec.name, "teacher": str(Path(teacher).resolve())
            if Path(teacher).exists() else str(teacher),
            "teacher_id2label": {str(k): v for k, v in model.config.id2label.items()},
            "label_order": list(spec.label_names) if spec.label_names else ["score"],
            "max_seq_length": max_length, "rows": len(ds),
            "agreement_with_labels": agreement}
    ds = with_metadata(ds, TEACHER_LOGITS, info)
    written = save_dataset(ds, out or data, {TEACHER_LOGITS_INFO: info}, carry_from=data)
    logger.info("wrote %d teacher logit rows to %s", len(ds), written)
    return {**info, "out": str(written)}
