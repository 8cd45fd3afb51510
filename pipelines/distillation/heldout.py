"""The validation split that chooses a run's checkpoint: the last N rows of a GLUE task's train
file, held out from training, and the checks that no training row is one of them.

``finetune --validation-rows N`` and ``distill --validation-rows N`` score the model on these
rows as it trains and keep its best weights (``tinyaug.distill.validation``); GLUE dev, which
reports, is then scored once. Rows are named by ``idx``, their index in the train file, which a
dataset made by ``tinyaug augment`` keeps for every variant: so a student's data, augmented or
not, is checked for overlap exactly.

Not here: the scoring and stopping rule (``tinyaug.distill.validation``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from tinyaug.distill.collator import TextCollator
from tinyaug.distill.validation import EarlyStopping, KeepBest, ValidationScore
from tinyaug.errors import InputError
from tinyaug.pipelines.io.glue import INDEX, TaskSpec, read_split

logger = logging.getLogger(__name__)


def split_train(data_dir: str | Path, spec: TaskSpec, validation_rows: int, train_limit: int | None
                ) -> tuple[datasets.Dataset, datasets.Dataset, int]:
    """The train file's good rows cut in two: the first ``train_limit`` (default: all but the
    held-out ones) to train on, the last ``validation_rows`` to validate on; and the count of
    bad rows skipped. Refused when they would overlap."""
    train, bad = read_split(Path(data_dir), spec, "train", skip_bad_rows=True)
    held_out = validation_rows_of(train, spec, validation_rows)
    available = len(train) - validation_rows
    if train_limit is not None and train_limit > available:
        raise InputError(f"--train-limit {train_limit} reaches into the validation rows: {spec.name}'s train file "
                         f"has {len(train)} usable rows and the last {validation_rows} are held out "
                         f"(--validation-rows); give --train-limit {available} or less, or hold out fewer rows")
    return train.select(range(min(train_limit or available, available))), held_out, len(bad)


def validation_rows_of(train: datasets.Dataset, spec: TaskSpec, count: int) -> datasets.Dataset:
    """The last ``count`` rows of ``train`` (a task's whole train split)."""
    if count < 1:
        raise InputError(f"--validation-rows must be >= 1, got {count}")
    if count >= len(train):
        raise InputError(f"--validation-rows {count}: {spec.name}'s train file has only {len(train)} usable rows; "
                         "hold out fewer rows")
    return train.select(range(len(train) - count, len(train)))


def read_validation(data_dir: str | Path, spec: TaskSpec, count: int) -> datasets.Dataset:
    """The last ``count`` usable rows of ``DATA_DIR/<Task>/train.tsv``."""
    train, _ = read_split(Path(data_dir), spec, "train", skip_bad_rows=True)
    return validation_rows_of(train, spec, count)


def check_disjoint(rows: datasets.Dataset, held_out: datasets.Dataset, what: str) -> None:
    """Refuse training ``rows`` that share a train-file row (``idx``) with the held-out rows; a
    dataset without ``idx`` cannot be checked (a warning says so)."""
    if INDEX not in rows.column_names:
        logger.warning("%s has no %s column, so it cannot be checked against the validation rows; make sure it "
                       "holds none of the last %d rows of the train file", what, INDEX, len(held_out))
        return
    overlap = np.intersect1d(np.asarray(rows[INDEX]), np.asarray(held_out[INDEX]))
    if len(overlap):
        raise InputError(f"{what}: {len(overlap)} of its source rows (idx {int(overlap[0])}, ...) are validation "
                         f"rows (the last {len(held_out)} of the train file, from idx {int(held_out[0][INDEX])}); "
                         "train on earlier rows (--train-limit, or augment with --limit) or hold out fewer "
                         "(--validation-rows)")


def keep_best_on(model: Any, tokenizer: Any, spec: TaskSpec, held_out: datasets.Dataset, rule: EarlyStopping,
                   max_length: int, name: str) -> KeepBest:
    """The callback that scores ``model`` on ``held_out`` by ``rule`` and keeps its best weights."""
    problems = rule.problems()
    if problems:
        raise InputError("; ".join(problems))
    collator = TextCollator(tokenizer, spec.text_columns, max_length)
    score = ValidationScore(spec.name, held_out, collator, list(spec.text_columns), spec.label_column)
    return KeepBest(model, score, rule, score.metric, name)


def validation_record(keep: dict[str, Any], held_out: datasets.Dataset) -> dict[str, Any]:
    """The results file's ``validation`` entry: the rule's record and which rows it used."""
    first = int(held_out[0][INDEX]) if INDEX in held_out.column_names and len(held_out) else None
    return {**keep, "rows": len(held_out), "source": f"the last {len(held_out)} rows of the train file",
            "first_idx": first}
