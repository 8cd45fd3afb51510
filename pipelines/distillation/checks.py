"""Checks on a task dataset's rows before any model sees them: tinyaug's columns have tinyaug's
types, every text is there, every label is one the task (and so the teacher) has.

Rows with a missing or empty text are refused, not skipped: ``teacher-logits`` writes a column
aligned with the rows, and a dataset that silently lost rows would no longer match its own
provenance. The message gives the count and the first row, so the rows can be dropped (or the
dataset rebuilt) on purpose.

Not here: loading the dataset (``loading``), finding empty texts (``io.rows``), the tasks' label
names (``io.glue``).
"""

from __future__ import annotations

import datasets
import numpy as np
import pyarrow as pa

from tinyaug.errors import InputError
from tinyaug.pipelines.io.glue import TaskSpec
from tinyaug.pipelines.io.rows import column_array, empty_text_rows
from tinyaug.pipelines.io.schema import check_columns

SHOWN = 3  # bad labels named in the message


def bad_label_rows(ds: datasets.Dataset, task: TaskSpec) -> np.ndarray:
    """Rows (0-based) whose label is missing, not finite or, for a classification task, not one
    of the class indices ``0 .. len(task.label_names) - 1``."""
    labels = column_array(ds, task.label_column)
    if not (pa.types.is_integer(labels.type) or pa.types.is_floating(labels.type)):
        return np.arange(len(labels))
    values = np.asarray(labels.to_numpy(zero_copy_only=False), dtype=np.float64)  # nulls become NaN
    bad = ~np.isfinite(values)
    if task.label_names is not None:
        with np.errstate(invalid="ignore"):
            bad |= (values < 0) | (values >= len(task.label_names)) | (values != np.floor(values))
    return np.flatnonzero(bad)


def check_task_rows(ds: datasets.Dataset, task: TaskSpec, where: str) -> None:
    """Refuse, in one ``InputError`` line that names ``where``, the column, the rows and what was
    expected: tinyaug columns of another type, missing or empty texts, labels out of range."""
    check_columns(ds, where)
    for column in task.text_columns:
        rows = empty_text_rows(ds, column)
        if len(rows):
            raise InputError(f"{where}: {len(rows)} row(s) with a missing or empty text in column {column!r} "
                             f"(first: row {rows[0]}, counting from 0); every row needs its text, since the "
                             "teacher's predictions are stored row by row: drop those rows and save the dataset "
                             "again, or rebuild it from a fixed source")
    rows = bad_label_rows(ds, task)
    if not len(rows):
        return
    labels = column_array(ds, task.label_column)
    shown = ", ".join(f"row {r}: {labels[int(r)].as_py()!r}" for r in rows[:SHOWN])
    shown += " ..." if len(rows) > SHOWN else ""
    if task.label_names is None:
        expected = f"a finite number ({task.name} is a regression task)"
    else:
        expected = (f"a class index 0..{len(task.label_names) - 1} ({task.name}'s {len(task.label_names)} labels "
                    f"{', '.join(task.label_names)}, the teacher's outputs in that order)")
    raise InputError(f"{where}: column {task.label_column!r} has {len(rows)} label(s) that are not {expected}: "
                     f"{shown}; fix or drop those rows (unlabelled rows, such as GLUE test's -1, cannot be used)")
