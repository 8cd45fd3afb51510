"""Paired comparisons of two arms on the same dev examples: a bootstrap interval and McNemar.

A comparison asks whether arm A beats arm B on a task's metric, with both evaluated on the same
dev examples, each arm trained with the same seeds. ``paired_bootstrap`` resamples the dev
examples (the same draw for both arms, so the pairing is kept) and the seeds (the same seed pairs
for both arms), recomputes the metric difference on every resample, and reports the observed
difference with its percentile interval. The metrics are computed from per-resample example
weights (how often each example was drawn), vectorised over all resamples at once, so ten
thousand resamples of a GLUE dev set take a fraction of a second; they equal scikit-learn's and
scipy's on the resampled rows (tests). ``mcnemar`` is the exact test for two classifiers'
accuracy on the same examples.

Not here: which arms to compare (the experiment's plan), training or scoring the students.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import stats

# metric name -> f(weights (R, n), predictions (n,), gold (n,)) -> (R,) values on each resample
WeightedMetric = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _accuracy(w: np.ndarray, predicted: np.ndarray, gold: np.ndarray) -> np.ndarray:
    return w @ (predicted == gold).astype(np.float64) / w.sum(axis=1)


def _confusion(w: np.ndarray, predicted: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, ...]:
    """Weighted binary confusion counts (positive class 1): tp, fp, fn, tn, each (R,)."""
    p, g = predicted == 1, gold == 1
    return tuple(w @ mask.astype(np.float64) for mask in (p & g, p & ~g, ~p & g, ~p & ~g))


def _f1(w: np.ndarray, predicted: np.ndarray, gold: np.ndarray) -> np.ndarray:
    tp, fp, fn, _ = _confusion(w, predicted, gold)
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)


def _mcc(w: np.ndarray, predicted: np.ndarray, gold: np.ndarray) -> np.ndarray:
    if len(np.union1d(predicted, gold)) > 2:
        raise ValueError("the bootstrap's MCC is binary (CoLA); other tasks use accuracy or F1")
    tp, fp, fn, tn = _confusion(w, predicted, gold)
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return np.divide(tp * tn - fp * fn, denominator, out=np.zeros_like(tp), where=denominator > 0)


def _pearson(w: np.ndarray, predicted: np.ndarray, gold: np.ndarray) -> np.ndarray:
    total = w.sum(axis=1, keepdims=True)
    x, y = predicted.astype(np.float64), gold.astype(np.float64)
    mx, my = (w @ x)[:, None] / total, (w @ y)[:, None] / total
    covariance = (w * (x - mx) * (y - my)).sum(axis=1)
    vx, vy = (w * (x - mx) ** 2).sum(axis=1), (w * (y - my) ** 2).sum(axis=1)
    denominator = np.sqrt(vx * vy)
    return np.divide(covariance, denominator, out=np.zeros_like(covariance), where=denominator > 0)


WEIGHTED_METRICS: dict[str, WeightedMetric] = {"accuracy": _accuracy, "f1": _f1, "mcc": _mcc, "pearson": _pearson}


def paired_bootstrap(metric: str, gold: np.ndarray, a: np.ndarray, b: np.ndarray, *, resamples: int = 10_000,
                     seed: int = 0, level: float = 0.95) -> dict[str, float | list[float]]:
    """A minus B on ``metric``, with a paired percentile bootstrap interval over dev examples and seeds.

    ``gold (n,)``: the dev labels (scores for Pearson); ``a (seeds, n)`` and ``b (seeds, n)``: each
    arm's predictions per training seed, row ``s`` of both trained with the same seed (a single
    row: no seed resampling). The observed difference is the mean over seeds of
    ``metric(a[s]) - metric(b[s])`` on all examples. Returns ``{"diff", "ci95", "p_above_zero",
    "resamples"}``, where ``p_above_zero`` is the share of resamples with a difference <= 0 (a
    one-sided bootstrap p-value for "A is better").

    >>> gold = np.array([1, 0, 1, 1, 0, 1])
    >>> out = paired_bootstrap("accuracy", gold, np.array([gold]), np.array([[1, 1, 1, 0, 0, 1]]), resamples=2000)
    >>> round(out["diff"], 4), out["ci95"][0] >= 0
    (0.3333, True)
    """
    gold = np.asarray(gold)
    a, b = np.atleast_2d(np.asarray(a)), np.atleast_2d(np.asarray(b))
    if a.shape != b.shape or a.shape[1] != len(gold):
        raise ValueError(f"arms of shape {a.shape} and {b.shape} do not pair with {len(gold)} dev labels")
    compute = WEIGHTED_METRICS[metric]
    n, seeds = len(gold), a.shape[0]
    rng = np.random.default_rng(seed)
    ones = np.ones((1, n))
    observed = float(np.mean([compute(ones, a[s], gold)[0] - compute(ones, b[s], gold)[0] for s in range(seeds)]))
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)  # (R, n): draws per example
    per_seed = np.stack([compute(weights, a[s], gold) - compute(weights, b[s], gold) for s in range(seeds)], axis=1)
    if seeds > 1:  # the same seed pairs for both arms, drawn with replacement
        drawn = rng.integers(0, seeds, size=(resamples, seeds))
        differences = np.take_along_axis(per_seed, drawn, axis=1).mean(axis=1)
    else:
        differences = per_seed[:, 0]
    tail = (1 - level) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    return {"diff": observed, "ci95": [float(low), float(high)],
            "p_above_zero": float(np.mean(differences <= 0)), "resamples": resamples}


def mcnemar(gold: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict[str, float | int]:
    """McNemar's exact test of two classifiers' accuracy on the same examples: ``a_only`` examples
    only A gets right, ``b_only`` only B; the two-sided binomial p-value of that split.

    >>> mcnemar(np.array([1] * 12), np.array([1] * 10 + [0] * 2), np.array([0] * 10 + [1] * 2))["p_value"]
    0.03857421875
    """
    gold, a, b = np.asarray(gold), np.asarray(a), np.asarray(b)
    a_right, b_right = a == gold, b == gold
    a_only, b_only = int(np.sum(a_right & ~b_right)), int(np.sum(b_right & ~a_right))
    p_value = 1.0 if a_only + b_only == 0 else float(stats.binomtest(a_only, a_only + b_only, 0.5).pvalue)
    return {"a_only": a_only, "b_only": b_only, "p_value": p_value}
