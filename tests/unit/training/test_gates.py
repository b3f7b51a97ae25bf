"""Paired bootstrap gates: each weighted statistic against an independent implementation
(sklearn with sample weights), the resampling itself, and the decision rules."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from trademaster.training import gates

RNG = np.random.default_rng(0)


def _weights(n: int, k: int = 5, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4, size=(k, n)).astype(float)


def test_weighted_auc_matches_sklearn_with_sample_weights_and_ties() -> None:
    labels = RNG.integers(0, 2, size=300)
    # Rounded scores: many ties, which count half.
    scores = np.round(labels * 0.3 + RNG.normal(size=300), 1)
    weights = _weights(300)

    ours = gates.weighted_auc(labels, scores, weights)

    expected = [roc_auc_score(labels, scores, sample_weight=w) for w in weights]
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


def test_weighted_macro_f1_matches_sklearn_including_absent_classes() -> None:
    labels = RNG.integers(0, 4, size=400)  # class 4 of 5 never occurs
    predicted = np.where(RNG.random(400) < 0.7, labels, RNG.integers(0, 5, size=400))
    weights = _weights(400)

    ours = gates.weighted_macro_f1(5)(labels, predicted, weights)

    expected = [
        f1_score(
            labels, predicted, average="macro", labels=range(5), sample_weight=w, zero_division=0
        )
        for w in weights
    ]
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


def test_weighted_rmse_and_mean_are_the_weighted_formulas() -> None:
    actual, predicted = RNG.normal(size=200), RNG.normal(size=200)
    weights = _weights(200)

    rmse = gates.weighted_rmse(actual, predicted, weights)

    expected = [np.sqrt(np.average((predicted - actual) ** 2, weights=w)) for w in weights]
    np.testing.assert_allclose(rmse, expected, rtol=1e-12)


def test_bootstrap_weights_draw_n_rows_or_whole_groups_deterministically() -> None:
    groups = np.repeat(np.arange(30), 4)
    chunks = list(gates.bootstrap_weights(120, groups, resamples=250, seed=3))
    weights = np.vstack(chunks)

    assert weights.shape == (250, 120)
    assert [len(chunk) for chunk in chunks] == [100, 100, 50]
    # A group is drawn whole: its rows share one weight; 30 groups drawn per resample.
    assert (weights.reshape(250, 30, 4).std(axis=2) == 0).all()
    np.testing.assert_array_equal(weights.sum(axis=1), np.full(250, 120.0))
    again = np.vstack(list(gates.bootstrap_weights(120, groups, resamples=250, seed=3)))
    np.testing.assert_array_equal(weights, again)
    iid = np.vstack(list(gates.bootstrap_weights(50, None, resamples=10, seed=3)))
    np.testing.assert_array_equal(iid.sum(axis=1), np.full(10, 50.0))


def test_identical_models_differ_by_exactly_zero() -> None:
    labels = RNG.integers(0, 2, size=500)
    scores = RNG.random(500)

    interval = gates.paired_difference(gates.weighted_auc, labels, scores, scores)

    assert (interval.estimate, interval.low, interval.high) == (0.0, 0.0, 0.0)


def test_a_clearly_better_model_has_its_whole_interval_above_zero() -> None:
    labels = RNG.integers(0, 2, size=2_000)
    good = labels + RNG.normal(0, 0.7, size=2_000)
    weak = labels + RNG.normal(0, 2.0, size=2_000)

    interval = gates.paired_difference(gates.weighted_auc, labels, good, weak)

    assert interval.low > 0.05
    assert interval.low < interval.estimate < interval.high


def test_losses_are_oriented_so_that_positive_means_better() -> None:
    actual = RNG.normal(size=1_000)
    close = actual + RNG.normal(0, 0.1, size=1_000)
    far = actual + RNG.normal(0, 1.0, size=1_000)

    interval = gates.paired_difference(
        gates.weighted_rmse, actual, close, far, higher_is_better=False, relative=True
    )

    assert 0.8 < interval.low <= interval.estimate <= interval.high < 0.95


def test_float_noise_between_cpus_never_decides_a_beats_gate() -> None:
    """Two models that differ by 1e-6 in their scores (as torch kernels on two CPUs do):
    no lift is shown, so 'beats' fails; 'not worse' passes. The same on every resample."""
    labels = RNG.integers(0, 2, size=3_000)
    reference = labels * 0.5 + RNG.normal(size=3_000)
    candidate = reference + RNG.normal(0, 1e-6, size=3_000)

    interval = gates.paired_difference(gates.weighted_auc, labels, candidate, reference)
    beats = gates.GateRule("vs_ref_auc", "AUC vs reference", "beats", 0.0)
    not_worse = gates.GateRule("vs_ref_auc", "AUC vs reference", "not_worse", 0.01)

    assert abs(interval.estimate) < 1e-4
    assert not beats.passes(interval)
    assert not_worse.passes(interval)


def test_clustered_resampling_widens_the_interval_of_correlated_rows() -> None:
    """Ten copies of each row look like ten times the evidence to an iid bootstrap."""
    labels = np.repeat(RNG.integers(0, 2, size=300), 10)
    a = labels + np.repeat(RNG.normal(0, 1.0, size=300), 10)
    b = labels + np.repeat(RNG.normal(0, 1.2, size=300), 10)
    groups = np.repeat(np.arange(300), 10)

    iid = gates.paired_difference(gates.weighted_auc, labels, a, b)
    clustered = gates.paired_difference(gates.weighted_auc, labels, a, b, groups=groups)

    assert (clustered.high - clustered.low) > 2 * (iid.high - iid.low)


def test_paired_difference_refuses_misaligned_or_empty_inputs() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        gates.paired_difference(gates.weighted_auc, np.zeros(3), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="no held-out rows"):
        gates.paired_difference(gates.weighted_auc, np.zeros(0), np.zeros(0), np.zeros(0))


RULES = (
    gates.GateRule("vs_baseline_f1", "F1 vs the baseline", "beats", 0.05),
    gates.GateRule("vs_champion_f1", "F1 vs the champion", "not_worse", 0.01, needs_champion=True),
)


def _recorded(**intervals: tuple[float, float, float]) -> dict[str, float]:
    return gates.record(RULES, {name: gates.Interval(*v) for name, v in intervals.items()})


def test_beats_needs_the_lower_bound_above_the_lift() -> None:
    promoted, reason, _ = gates.evaluate(RULES, _recorded(vs_baseline_f1=(0.09, 0.051, 0.12)))
    assert promoted
    assert "F1 vs the baseline: +0.0900 [+0.0510, +0.1200]" in reason
    assert "F1 vs the champion: no champion yet" in reason

    # The point estimate clears the lift, the interval does not.
    promoted, reason, _ = gates.evaluate(RULES, _recorded(vs_baseline_f1=(0.09, 0.049, 0.12)))
    assert not promoted
    assert reason.startswith("F1 vs the baseline: +0.0900 [+0.0490, +0.1200]")
    assert "FAIL" in reason


def test_not_worse_is_judged_on_the_lower_bound() -> None:
    passing = _recorded(vs_baseline_f1=(0.1, 0.08, 0.12), vs_champion_f1=(0.0, -0.009, 0.01))
    failing = _recorded(vs_baseline_f1=(0.1, 0.08, 0.12), vs_champion_f1=(0.0, -0.011, 0.01))

    assert gates.evaluate(RULES, passing)[0]
    promoted, reason, results = gates.evaluate(RULES, failing)
    assert not promoted
    assert reason.startswith("F1 vs the champion")
    assert [result.passed for result in results] == [True, False]


def test_a_missing_interval_is_an_error_naming_the_gate() -> None:
    with pytest.raises(KeyError, match="vs_baseline_f1"):
        gates.evaluate(RULES, {})
    with pytest.raises(KeyError, match="vs_baseline_f1"):
        gates.record(RULES, {})
    with pytest.raises(KeyError, match="no rule declares"):
        gates.record(RULES, {"vs_typo": gates.Interval(0, 0, 0)})


def test_a_nan_interval_never_passes() -> None:
    rule = RULES[0]
    assert not rule.passes(gates.Interval(float("nan"), float("nan"), float("nan")))
