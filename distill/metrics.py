"""GLUE's official dev metrics, computed with scikit-learn and scipy.

CoLA: Matthews correlation. STS-B: Pearson and Spearman correlation. MRPC, QQP: F1 of the
positive class (equivalent / duplicate) and accuracy. Everything else: accuracy. MNLI's matched
and mismatched dev sets are scored separately by the caller (one call each).

Also a plain "is this model better than chance?" test, used to refuse to hide a teacher that
never learned its task.

Not here: running models; predictions and labels come in as arrays in the task's label order.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from tinyaug.tasks import TASKS

PRIMARY_METRIC = {name: task.metric for name, task in TASKS.items()}  # ``tinyaug.tasks``

# How far above chance the primary metric must be before a teacher counts as trained.
CHANCE_MARGIN = {"mcc": 0.05, "pearson": 0.10, "f1": 0.02, "accuracy": 0.02}


def primary_metric(task: str) -> str:
    """The metric GLUE ranks a task by: ``"mcc"`` for CoLA, ``"accuracy"`` for SST-2, ..."""
    return PRIMARY_METRIC[task]


# every metric by name: (predictions, labels) -> value; class ids for the first three, scores for the
# correlations. A task lists the ones it reports (``tinyaug.tasks``): a new metric is one entry here.
METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": lambda predicted, gold: float(accuracy_score(gold, predicted)),
    "f1": lambda predicted, gold: float(f1_score(gold, predicted, pos_label=1, zero_division=0.0)),
    "mcc": lambda predicted, gold: float(matthews_corrcoef(gold, predicted)),
    "pearson": lambda scores, gold: _correlation(stats.pearsonr, scores, gold),
    "spearman": lambda scores, gold: _correlation(stats.spearmanr, scores, gold),
}


def compute_metrics(task: str, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The task's official metrics (``tinyaug.tasks``' ``metrics``, computed by ``METRICS``).

    ``predictions``: (N,) class ids, or for a regression task (N,) or (N, 1) scores; (N, C)
    logits are reduced with argmax. ``labels``: (N,) class ids or scores.

    Example: task "mrpc", predictions [1, 1, 0, 0], labels [1, 0, 1, 0]
    -> {"f1": 0.5, "accuracy": 0.5}.
    """
    spec = TASKS[task]
    predictions = np.asarray(predictions)
    labels = np.asarray(labels)
    if spec.is_regression:
        predictions, labels = predictions.reshape(-1).astype(np.float64), labels.astype(np.float64)
    elif predictions.ndim == 2:
        predictions = predictions.argmax(axis=-1)
    return {name: METRICS[name](predictions, labels) for name in spec.metrics}


def _correlation(fn, x: np.ndarray, y: np.ndarray) -> float:
    """A correlation that is 0.0, not NaN and a warning, when one side is constant."""
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(fn(x, y)[0])


def chance_level(task: str, labels: np.ndarray, num_labels: int | None = None) -> float:
    """The primary metric of the best constant guess on these labels.

    Accuracy: the majority class's share. F1: predicting the positive class for everything.
    MCC and Pearson: 0.

    Example: task "sst2", labels [1, 1, 0] -> 0.6667.
    """
    metric = primary_metric(task)
    labels = np.asarray(labels)
    if metric in ("mcc", "pearson") or len(labels) == 0:
        return 0.0
    counts = np.bincount(labels.astype(np.int64), minlength=num_labels or 0)
    if metric == "f1":
        positive = counts[1] / len(labels) if len(counts) > 1 else 0.0
        return float(2 * positive / (1 + positive)) if positive else 0.0
    return float(counts.max() / len(labels))


def chance_report(task: str, metrics: dict[str, float], labels: Sequence) -> dict:
    """Whether a model's primary dev metric is within a small margin of chance.

    Returns ``{"metric", "value", "chance", "margin", "near_chance"}``.

    Example: task "sst2", metrics {"accuracy": 0.51}, labels with a 50% majority
    -> near_chance True (0.51 <= 0.50 + 0.02).
    """
    metric = primary_metric(task)
    chance = chance_level(task, np.asarray(labels))
    margin = CHANCE_MARGIN[metric]
    value = float(metrics[metric])
    return {"metric": metric, "value": value, "chance": chance, "margin": margin,
            "near_chance": bool(value <= chance + margin)}


def teacher_on_variants(example_ids: np.ndarray, variants: np.ndarray, logits: np.ndarray,
                        regression: bool = False) -> dict[str, float | int | list[float]]:
    """How the teacher's view of augmented variants differs from its view of their originals.

    ``example_ids (n,)``, ``variants (n,)`` (0 = the original), ``logits (n, labels)`` (or
    ``(n, 1)`` scores with ``regression``). Classification: the share of variants whose predicted
    label differs from the prediction on their original (``changed_prediction``), and the
    predicted class shares on originals and on variants. Regression: the mean absolute change of
    the score. Variants whose original row is absent are left out.

    Example: ids [0, 0, 1, 1], variants [0, 1, 0, 1], argmax [1, 0, 1, 1]
    -> variants 2, changed_prediction 0.5, classes_original [0, 1], classes_variants [0.5, 0.5].
    """
    example_ids, variants = np.asarray(example_ids), np.asarray(variants)
    logits = np.asarray(logits, dtype=np.float64).reshape(len(example_ids), -1)
    is_original = variants == 0
    original_row = {int(i): row for row, i in zip(np.flatnonzero(is_original), example_ids[is_original])}
    rows = [row for row in np.flatnonzero(~is_original) if int(example_ids[row]) in original_row]
    matched = np.asarray([original_row[int(example_ids[row])] for row in rows], dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    result: dict[str, float | int | list[float]] = {"variants": int(len(rows))}
    if regression:
        result["mean_abs_score_change"] = float(np.abs(logits[rows, 0] - logits[matched, 0]).mean()) if len(rows) else 0.0
        return result
    predicted = logits.argmax(axis=1)
    labels = logits.shape[1]

    def shares(selected: np.ndarray) -> list[float]:
        counts = np.bincount(predicted[selected], minlength=labels)
        return [float(c / max(1, len(selected))) for c in counts]

    result["changed_prediction"] = float(np.mean(predicted[rows] != predicted[matched])) if len(rows) else 0.0
    result["classes_original"] = shares(np.flatnonzero(is_original))
    result["classes_variants"] = shares(rows)
    return result
