"""Aligning a model's output classes with a task's labels, by name.

A teacher fine-tuned elsewhere may order MNLI's classes as (contradiction, entailment, neutral)
while GLUE's order is (entailment, neutral, contradiction): comparing logits by index then
teaches the student the wrong class (the reference's issue #229). Everything in tinyaug keeps
logits in the task's label order; ``label_permutation`` says which model output is which.

Not here: loading configs; the task's label names come in as plain strings.
"""

from __future__ import annotations

import logging
import re
from typing import Mapping, Sequence

from tinyaug.errors import InputError

logger = logging.getLogger(__name__)

_GENERIC = re.compile(r"^(label_?)?(\d+)$")


def normalize_label(name: str) -> str:
    """``"Not Entailment"`` / ``"not-entailment"`` / ``"NOT_ENTAILMENT"`` -> ``"not_entailment"``."""
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def is_generic(id2label: Mapping[int, str]) -> bool:
    """True when the names carry no meaning: ``LABEL_0, LABEL_1`` or ``0, 1`` in index order."""
    for index, name in id2label.items():
        match = _GENERIC.match(normalize_label(name))
        if not match or int(match.group(2)) != int(index):
            return False
    return True


def label_permutation(id2label: Mapping[int, str], task_labels: Sequence[str] | None,
                      who: str = "model") -> list[int]:
    """Output index of each task label: ``logits[:, perm]`` is in the task's label order.

    ``id2label``: the model config's ``{index: name}``; ``task_labels``: the task's names in
    order, or None for a regression task (one output expected).

    Example: id2label {0: "CONTRADICTION", 1: "ENTAILMENT", 2: "NEUTRAL"} with task labels
    (entailment, neutral, contradiction) -> [1, 2, 0].

    Generic names (``LABEL_0``...) cannot be aligned: the order is taken as is, with a warning.
    Raises ``InputError`` when the number of outputs differs or names do not match.
    """
    id2label = {int(k): v for k, v in id2label.items()}
    outputs = len(id2label)
    if task_labels is None:
        if outputs != 1:
            raise InputError(f"the {who} has {outputs} outputs but this regression task needs 1 "
                             "(a score); fine-tune it with `tinyaug finetune ... --task stsb`")
        return [0]
    if outputs != len(task_labels):
        raise InputError(f"the {who} has {outputs} outputs ({', '.join(id2label[i] for i in sorted(id2label))}) "
                         f"but the task has {len(task_labels)} labels ({', '.join(task_labels)}); "
                         "was it fine-tuned on another task?")
    if is_generic(id2label):
        logger.warning("the %s's labels are unnamed (%s): assuming they are in the task's order "
                       "(%s); set id2label in its config.json to align them by name",
                       who, ", ".join(id2label[i] for i in sorted(id2label)), ", ".join(task_labels))
        return list(range(outputs))
    by_name = {normalize_label(name): index for index, name in id2label.items()}
    missing = [name for name in task_labels if normalize_label(name) not in by_name]
    if missing or len(by_name) != outputs:
        raise InputError(f"the {who}'s labels ({', '.join(id2label[i] for i in sorted(id2label))}) "
                         f"do not match the task's ({', '.join(task_labels)}); missing {missing}; "
                         "fix id2label in its config.json or check --task")
    return [by_name[normalize_label(name)] for name in task_labels]
