"""The experiment's paired statistics against independent implementations and hand-worked cases."""

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from tinyaug.pipelines.experiment.statistics import WEIGHTED_METRICS, mcnemar, paired_bootstrap

REFERENCE = {"accuracy": accuracy_score, "f1": lambda g, p: f1_score(g, p, zero_division=0.0),
             "mcc": matthews_corrcoef, "pearson": lambda g, p: stats.pearsonr(p, g)[0]}


@pytest.mark.parametrize("metric", sorted(WEIGHTED_METRICS))
def test_weighted_metrics_equal_the_libraries_on_the_resampled_rows(metric):
    rng = np.random.default_rng(1)
    n = 50
    if metric == "pearson":
        gold, predicted = rng.normal(size=n), rng.normal(size=n)
    else:
        gold, predicted = rng.integers(0, 2, n), rng.integers(0, 2, n)
    rows = rng.integers(0, n, size=(20, n))  # 20 resamples as row indices
    weights = np.stack([np.bincount(r, minlength=n) for r in rows]).astype(float)
    got = WEIGHTED_METRICS[metric](weights, predicted, gold)
    expected = [REFERENCE[metric](gold[r], predicted[r]) for r in rows]
    assert got == pytest.approx(expected, abs=1e-9)


def test_the_bootstrap_distribution_of_a_two_example_case_worked_by_hand():
    # gold [1, 1]; A right on both, B on the first only. Resamples of two draws: both of example 0
    # (p 1/4, diff 0), one of each (1/2, diff 0.5), both of example 1 (1/4, diff 1).
    out = paired_bootstrap("accuracy", np.array([1, 1]), np.array([[1, 1]]), np.array([[1, 0]]), resamples=20_000)
    assert out["diff"] == 0.5 and out["ci95"] == [0.0, 1.0]
    assert out["p_above_zero"] == pytest.approx(0.25, abs=0.01)


def test_identical_arms_differ_by_nothing_and_a_real_gap_is_found():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 400)
    a = np.where(rng.random((3, 400)) < 0.9, gold, 1 - gold)  # 90% right, three seeds
    b = np.where(rng.random((3, 400)) < 0.7, gold, 1 - gold)  # 70% right
    same = paired_bootstrap("accuracy", gold, a, a, resamples=500)
    assert same["diff"] == 0 and same["ci95"] == [0.0, 0.0]
    gap = paired_bootstrap("accuracy", gold, a, b, resamples=2000)
    assert 0.15 < gap["diff"] < 0.25 and 0 < gap["ci95"][0] < gap["diff"] < gap["ci95"][1]
    assert gap["p_above_zero"] == 0.0
    noise = paired_bootstrap("accuracy", gold, a[:1], np.where(rng.random((1, 400)) < 0.9, gold, 1 - gold),
                             resamples=2000)
    assert noise["ci95"][0] < 0 < noise["ci95"][1]  # two 90% arms: no difference to claim


def test_seeds_are_resampled_in_pairs():
    gold = np.array([1, 0] * 50)
    right, wrong = gold.copy(), 1 - gold
    # seed 0: A right, B wrong; seed 1: A wrong, B right -> mean diff 0, but resampling seeds spreads it
    a, b = np.stack([right, wrong]), np.stack([wrong, right])
    out = paired_bootstrap("accuracy", gold, a, b, resamples=4000)
    assert out["diff"] == 0.0 and out["ci95"] == [-1.0, 1.0]


def test_mcnemar_and_mismatched_arms():
    gold = np.array([1] * 12)
    assert mcnemar(gold, gold, gold) == {"a_only": 0, "b_only": 0, "p_value": 1.0}
    worked = mcnemar(gold, np.array([1] * 10 + [0] * 2), np.array([0] * 10 + [1] * 2))
    assert worked["a_only"] == 10 and worked["b_only"] == 2
    assert worked["p_value"] == pytest.approx(2 * (1 + 12 + 66) / 2 ** 12)  # two-sided binomial, 12 trials
    with pytest.raises(ValueError, match="do not pair"):
        paired_bootstrap("accuracy", gold, np.zeros((2, 12)), np.zeros((1, 12)))
