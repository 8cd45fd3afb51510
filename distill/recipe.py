"""The two-stage TinyBERT recipe as data: per-stage settings, per-task presets, validation.

Stage 1 (intermediate layers) and stage 2 (prediction layer) each get their own epochs, learning
rate, batch size, warm-up and step budget. ``DistillRecipe.for_task`` starts from the paper's
per-task values (the reference code has such a table but never applies it, issue #77):

- stage 1: 20 epochs (10 for MNLI, QQP, QNLI; 50 for CoLA), batch 32, learning rate 5e-5;
- stage 2: 3 epochs, batch 32, learning rate 3e-5 (the paper picks from {1e-5, 2e-5, 3e-5} on dev);
- maximum sequence length 64 for single-sentence tasks (CoLA, SST-2), 128 for pairs;
- warm-up over the first 10% of steps and weight decay 0.01, as in the reference's BertAdam;
- temperature 1.

Not here: the training itself (``run``, ``training``), files (``tinyaug.pipelines.distillation``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tinyaug.errors import InputError
from tinyaug.tasks import TASK_NAMES, TASKS

SINGLE_SENTENCE_TASKS = tuple(name for name, task in TASKS.items() if len(task.text_columns) == 1)
KNOWN_TASKS = TASK_NAMES  # ``tinyaug.tasks``
STAGE1_EPOCHS = {name: task.stage1_epochs for name, task in TASKS.items()}
EMBEDDING_PROJECTIONS = ("separate", "shared")
PRECISIONS = ("fp32", "fp16", "bf16")


@dataclasses.dataclass(frozen=True)
class StageSettings:
    """Optimisation settings of one training stage (also used by ``finetune``)."""

    epochs: float
    learning_rate: float
    batch_size: int  # per device
    warmup_ratio: float = 0.1  # fraction of the stage's steps with a linearly rising rate
    weight_decay: float = 0.01
    max_steps: int | None = None  # a budget: stop after this many steps if epochs are not done

    def problems(self, name: str) -> list[str]:
        found = []
        if not self.epochs > 0:
            found.append(f"{name} epochs must be > 0, got {self.epochs}")
        if not self.learning_rate > 0:
            found.append(f"{name} learning rate must be > 0, got {self.learning_rate}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            found.append(f"{name} batch size must be an integer >= 1, got {self.batch_size}")
        if not 0 <= self.warmup_ratio < 1:
            found.append(f"{name} warm-up ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.weight_decay < 0:
            found.append(f"{name} weight decay must be >= 0, got {self.weight_decay}")
        if self.max_steps is not None and self.max_steps < 1:
            found.append(f"{name} max steps must be >= 1 (or unset), got {self.max_steps}")
        return found


FINETUNE_DEFAULTS = StageSettings(epochs=3, learning_rate=2e-5, batch_size=32)


def default_max_seq_length(task: str) -> int:
    """64 for single-sentence tasks, 128 for sentence pairs (the paper's values)."""
    return 64 if task in SINGLE_SENTENCE_TASKS else 128


@dataclasses.dataclass(frozen=True)
class DistillRecipe:
    """Everything that decides a distillation run, validated once, stored with the student."""

    task: str
    stage1: StageSettings
    stage2: StageSettings
    max_seq_length: int
    temperature: float = 1.0
    layer_map: tuple[int, ...] | None = None  # teacher layer per student layer; None = uniform
    embedding_projection: str = "separate"  # "separate": W_e and W_h (paper); "shared": one (reference)
    attention_weight: float = 1.0
    hidden_weight: float = 1.0
    seed: int = 42
    precision: str = "fp32"  # "fp16" / "bf16": mixed precision through the Trainer

    def __post_init__(self) -> None:
        if self.layer_map is not None:
            object.__setattr__(self, "layer_map", tuple(self.layer_map))
        problems = self.stage1.problems("stage 1") + self.stage2.problems("stage 2")
        if self.task not in KNOWN_TASKS:
            problems.append(f"task must be one of {', '.join(KNOWN_TASKS)}, got {self.task!r}")
        if not (isinstance(self.max_seq_length, int) and 8 <= self.max_seq_length <= 4096):
            problems.append(f"max sequence length must be an integer in [8, 4096], got {self.max_seq_length}")
        if not self.temperature > 0:
            problems.append(f"temperature must be > 0, got {self.temperature}")
        if self.embedding_projection not in EMBEDDING_PROJECTIONS:
            problems.append(f"embedding projection must be one of {', '.join(EMBEDDING_PROJECTIONS)}, "
                            f"got {self.embedding_projection!r}")
        if self.attention_weight < 0 or self.hidden_weight < 0:
            problems.append("loss weights must be >= 0")
        if self.attention_weight == 0 and self.hidden_weight == 0:
            problems.append("attention and hidden weights are both 0: stage 1 would learn nothing")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if problems:
            raise InputError("bad distillation settings: " + "; ".join(problems))

    @classmethod
    def for_task(cls, task: str, **overrides: Any) -> "DistillRecipe":
        """The paper's preset for ``task``; ``overrides`` replace top-level fields, and
        ``stage1`` / ``stage2`` may be dicts of the fields to change.

        Example: ``DistillRecipe.for_task("cola", stage2={"learning_rate": 1e-5}).stage1.epochs`` -> 50.
        """
        stage1 = StageSettings(epochs=STAGE1_EPOCHS.get(task, 20), learning_rate=5e-5, batch_size=32)
        stage2 = StageSettings(epochs=3, learning_rate=3e-5, batch_size=32)
        for key, base in (("stage1", stage1), ("stage2", stage2)):
            change = overrides.pop(key, None)
            if isinstance(change, dict):
                change = dataclasses.replace(base, **{k: v for k, v in change.items() if v is not None})
            overrides[key] = change or base
        fields = {"task": task, "max_seq_length": default_max_seq_length(task)}
        fields.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DistillRecipe":
        data = dict(data)
        data["stage1"] = StageSettings(**data["stage1"])
        data["stage2"] = StageSettings(**data["stage2"])
        return cls(**data)
