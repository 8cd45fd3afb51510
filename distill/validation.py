"""Early stopping on a held-out validation split: score every K steps, stop after P scores
without improvement, and end with the best-scoring weights.

The choice of a budget or checkpoint is made on validation rows that neither the student nor
the teacher trained on, never on the dev set that reports; GLUE dev is then scored once, on the
weights chosen here. Every condition of an experiment gets the same rule (``EarlyStopping``).

Scoring runs the model without gradients in eval mode (no dropout, so no random draws: the
training run's random stream, and so its rows and batches, are the same with or without it).
The best weights are kept as a copy on the CPU (a 2-layer student: tens of MB).

Not here: where the validation rows come from (``tinyaug.pipelines.distillation``), the Trainer
settings (``training``).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from transformers import TrainerCallback

from tinyaug.distill.collator import TextCollator
from tinyaug.distill.inference import predict_logits
from tinyaug.distill.metrics import compute_metrics, primary_metric

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """Score on validation every ``every`` optimiser steps (and at the last step); stop once
    ``patience`` scores in a row have not beaten the best one (0: never stop early, only keep
    the best); keep the best weights."""

    every: int = 50
    patience: int = 3

    def problems(self) -> list[str]:
        found = []
        if self.every < 1:
            found.append(f"--eval-every must be >= 1, got {self.every}")
        if self.patience < 0:
            found.append(f"--patience must be >= 0 (0: never stop early), got {self.patience}")
        return found


class ValidationScore:
    """The task's primary metric of a model on ``rows`` (text columns and the label column):
    ``score(model) -> float``, higher is better (accuracy, F1, MCC, Pearson)."""

    def __init__(self, task: str, rows: Any, collator: TextCollator, text_columns: list[str],
                 label_column: str, batch_size: int = 128) -> None:
        self.task, self.metric = task, primary_metric(task)
        self.rows = rows.select_columns(list(text_columns))
        self.gold = np.asarray(rows[label_column])
        self.collator, self.batch_size = collator, batch_size

    def __call__(self, model: nn.Module) -> float:
        device = next(model.parameters()).device
        was_training = model.training
        logits = predict_logits(model, self.collator, self.rows, batch_size=self.batch_size, device=device)
        model.train(was_training)
        return float(compute_metrics(self.task, logits, self.gold)[self.metric])


class KeepBest(TrainerCallback):
    """A ``TrainerCallback`` that scores ``model`` with ``score`` every ``rule.every`` steps and at
    the end, stops training after ``rule.patience`` scores without improvement, and puts the best
    weights back when training ends. ``record()``: what happened, for the results file."""

    def __init__(self, model: nn.Module, score: Callable[[nn.Module], float], rule: EarlyStopping,
                 metric: str, name: str = "training") -> None:
        self.model, self.score, self.rule, self.metric, self.name = model, score, rule, metric, name
        self.history: list[tuple[int, float]] = []
        self.best: tuple[int, float] | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stale = 0
        self.stopped_early = False

    def _evaluate(self, step: int) -> None:
        if self.history and self.history[-1][0] == step:
            return
        value = self.score(self.model)
        self.history.append((step, value))
        if self.best is None or value > self.best[1]:
            self.best, self.stale = (step, value), 0
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        else:
            self.stale += 1
        logger.info("%s step %d: validation %s %.4f (best %.4f at step %d)", self.name, step, self.metric,
                    value, self.best[1], self.best[0])

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D401 (Trainer API)
        step = state.global_step
        if step % self.rule.every == 0 or step >= state.max_steps:
            self._evaluate(step)
            if self.rule.patience and self.stale >= self.rule.patience and step < state.max_steps:
                self.stopped_early = True
                control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kwargs):  # noqa: D401 (Trainer API)
        self._evaluate(state.global_step)  # a no-op when the last step was scored
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return control

    def record(self) -> dict[str, Any]:
        return {"metric": self.metric, "every": self.rule.every, "patience": self.rule.patience,
                "history": [[step, value] for step, value in self.history],
                "best_step": self.best[0] if self.best else None, "best": self.best[1] if self.best else None,
                "last_step": self.history[-1][0] if self.history else None, "stopped_early": self.stopped_early}
