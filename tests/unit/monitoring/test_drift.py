"""Drift statistics against independent implementations on the raw samples (scipy, or the
formula written out here), and the states they lead to."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from trademaster.monitoring.drift import (
    DriftSettings,
    FeatureDrift,
    compare,
    holm,
    ks_pvalue,
    ks_statistic,
    wasserstein,
)
from trademaster.monitoring.profile import build_profile

LOOSE = DriftSettings(min_samples=50)
# Our Wasserstein is computed from the 2,000-point sketch, not the 50,000 raw rows: the
# difference measured on these draws is at most 5e-4 reference stds; 2e-3 is 2% of the
# drift threshold.
SKETCH_TOLERANCE = 2e-3


def _one(profile_frame: pd.DataFrame, current: pd.DataFrame, settings: DriftSettings = LOOSE):
    (feature,) = compare(build_profile(profile_frame, "svc"), current, settings).features
    return feature


def test_ks_matches_scipy_on_the_raw_samples() -> None:
    rng = np.random.default_rng(1)
    # Rounded values: ties inside and across the samples.
    reference = np.round(rng.normal(size=400), 1)
    current = np.round(rng.normal(0.2, 1.1, size=900), 1)
    expected = stats.ks_2samp(reference, current, method="asymp")

    statistic = ks_statistic(np.sort(reference), np.sort(current))
    assert statistic == expected.statistic
    assert ks_pvalue(statistic, reference.size, current.size) == pytest.approx(
        expected.pvalue, rel=1e-9
    )

    feature = _one(pd.DataFrame({"x": reference}), pd.DataFrame({"x": current}))
    assert (feature.method, feature.threshold) == ("ks", 0.05)
    assert feature.score == pytest.approx(expected.pvalue, rel=1e-9)
    assert feature.state == ("drift" if expected.pvalue < 0.05 else "no_drift")


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.3])
@pytest.mark.parametrize("draw", ["normal", "lognormal"])
def test_normed_wasserstein_from_the_sketch_matches_the_raw_reference(
    draw: str, shift: float
) -> None:
    rng = np.random.default_rng(2)
    raw = getattr(rng, draw)(size=50_000)
    current = getattr(rng, draw)(size=5_000) + shift

    feature = _one(pd.DataFrame({"x": raw}), pd.DataFrame({"x": current}))

    expected = stats.wasserstein_distance(raw, current) / raw.std()
    assert feature.method == "wasserstein"
    assert feature.score is not None
    assert abs(feature.score - expected) < SKETCH_TOLERANCE


def test_wasserstein_is_exact_between_two_samples() -> None:
    rng = np.random.default_rng(3)
    u, v = np.sort(rng.gamma(2.0, size=300)), np.sort(rng.normal(2, 1, size=700))
    assert wasserstein(u, v) == pytest.approx(stats.wasserstein_distance(u, v), rel=1e-12)


def test_jensenshannon_matches_scipy_with_a_new_category() -> None:
    reference = pd.DataFrame({"tier": ["gold"] * 200 + ["silver"] * 300 + ["bronze"] * 500})
    current = pd.DataFrame({"tier": ["gold"] * 150 + ["bronze"] * 300 + ["platinum"] * 50})

    feature = _one(reference, current)

    # Union in the order bronze, gold, platinum, silver.
    expected = jensenshannon([500, 200, 0, 300], [300, 150, 50, 0])
    assert feature.method == "jensenshannon"
    assert feature.score == pytest.approx(expected, rel=1e-12)
    assert feature.state == "drift"
    ref, cur = np.array([0.5, 0.2, 1e-4, 0.3]), np.array([0.6, 0.3, 0.1, 1e-4])
    assert feature.psi == pytest.approx(np.sum((cur - ref) * np.log(cur / ref)))


def _psi_by_formula(reference: np.ndarray, current: np.ndarray) -> float:
    edges = np.unique(np.quantile(reference, np.arange(1, 10) / 10))
    bounds = np.r_[-np.inf, edges, np.inf]
    total = 0.0
    for low, high in itertools.pairwise(bounds):
        r = max(np.mean((reference > low) & (reference <= high)), 1e-4)
        c = max(np.mean((current > low) & (current <= high)), 1e-4)
        total += (c - r) * np.log(c / r)
    return float(total)


@pytest.mark.parametrize("rows", [800, 20_000])  # the KS path and the Wasserstein path
def test_psi_matches_its_formula(rows: int) -> None:
    rng = np.random.default_rng(4)
    reference = rng.exponential(size=rows)
    # Beyond the reference's range on both sides, a point mass on a decile edge and an
    # empty bin (its share floored).
    current = np.r_[rng.exponential(1.3, size=900) - 0.1, np.full(100, np.median(reference))]
    low, high = np.quantile(reference, [0.3, 0.4])
    current = current[(current <= low) | (current > high)]

    feature = _one(pd.DataFrame({"x": reference}), pd.DataFrame({"x": current}))

    assert feature.psi == pytest.approx(_psi_by_formula(reference, current), rel=1e-9)


@pytest.mark.parametrize("rows", [800, 20_000])
def test_a_shifted_distribution_drifts_and_the_same_one_does_not(rows: int) -> None:
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"x": rng.normal(size=rows)})
    settings = DriftSettings()

    same = _one(reference, pd.DataFrame({"x": rng.normal(size=2_000)}), settings)
    shifted = _one(reference, pd.DataFrame({"x": rng.normal(0.5, 1, size=2_000)}), settings)

    assert (same.state, shifted.state) == ("no_drift", "drift")
    assert same.method == shifted.method == ("ks" if rows <= 1_000 else "wasserstein")


def test_too_few_current_rows_are_insufficient_data() -> None:
    rng = np.random.default_rng(6)
    reference = pd.DataFrame({"x": rng.normal(size=5_000), "tier": ["a", "b"] * 2_500})
    current = pd.DataFrame({"x": rng.normal(5, 1, size=99), "tier": ["c"] * 99})

    report = compare(build_profile(reference, "svc"), current, DriftSettings(min_samples=100))

    assert [(f.state, f.score, f.psi, f.samples) for f in report.features] == [
        ("insufficient_data", None, None, 99),
        ("insufficient_data", None, None, 99),
    ]
    assert report.drift_share is None
    assert report.dataset_drift is False


def test_non_finite_current_values_are_dropped() -> None:
    rng = np.random.default_rng(7)
    current = np.r_[rng.normal(size=100), [np.nan, np.inf, -np.inf]]

    feature = _one(pd.DataFrame({"x": rng.normal(size=300)}), pd.DataFrame({"x": current}))

    assert feature.samples == 100
    assert feature.score is not None
    assert np.isfinite(feature.score)


def test_a_constant_reference_is_normed_by_a_small_epsilon() -> None:
    reference = pd.DataFrame({"x": np.full(5_000, 7.0)})

    assert _one(reference, pd.DataFrame({"x": np.full(100, 7.0)})).score == 0.0
    moved = _one(reference, pd.DataFrame({"x": np.full(100, 7.01)}))
    assert moved.score == pytest.approx(0.01 / 1e-3)
    assert moved.state == "drift"


def _grid(rows: int, shift: float = 0.0) -> np.ndarray:
    return (np.arange(rows) + 0.5) / rows + shift


def test_holm_turns_a_borderline_drift_into_no_drift() -> None:
    # A sup-ECDF gap of 0.09 on 500 vs 500 rows: p about 0.035, below alpha but above
    # alpha / 3.
    reference = pd.DataFrame({"a": _grid(500), "b": _grid(500), "c": _grid(500)})
    current = pd.DataFrame({"a": _grid(500, 0.09), "b": _grid(500), "c": _grid(500)})
    p = stats.ks_2samp(reference["a"], current["a"], method="asymp").pvalue
    assert 0.05 / 3 < p < 0.05

    alone = compare(build_profile(reference[["a"]], "svc"), current, LOOSE).features[0]
    (a, b, c) = compare(build_profile(reference, "svc"), current, LOOSE).features

    assert (alone.state, alone.threshold) == ("drift", 0.05)
    assert (a.state, a.threshold) == ("no_drift", pytest.approx(0.05 / 3))
    assert a.score == pytest.approx(p)
    assert (b.state, c.state) == ("no_drift", "no_drift")


def _ks(score: float | None, name: str = "x") -> FeatureDrift:
    state = "insufficient_data" if score is None else "no_drift"
    return FeatureDrift(name, "numeric", "ks", state, score, 0.05, None, 100, 100)


def test_holm_agrees_with_adjusted_p_values() -> None:
    rng = np.random.default_rng(8)
    for _ in range(200):
        scores = rng.uniform(0, 0.08, size=6) ** rng.uniform(1, 2)
        features = holm([_ks(float(s), str(i)) for i, s in enumerate(scores)], 0.05)

        order = np.argsort(scores)
        adjusted = np.empty(len(scores))
        adjusted[order] = np.maximum.accumulate(scores[order] * (len(scores) - np.arange(6)))
        assert [f.state == "drift" for f in features] == list(adjusted < 0.05)
        # What is published can be read on its own: drift iff the score is below the
        # threshold it was compared with.
        for feature in features:
            assert feature.score is not None
            assert (feature.state == "drift") == (feature.score < feature.threshold)


def test_holm_ignores_unchecked_and_distance_features() -> None:
    distance = FeatureDrift("w", "numeric", "wasserstein", "drift", 0.5, 0.1, 0.3, 100, 5_000)
    features = holm([_ks(0.03, "a"), _ks(None, "b"), distance], 0.05)

    assert features[0].threshold == 0.05  # one test, no correction
    assert features[0].state == "drift"
    assert features[1:] == [_ks(None, "b"), distance]


def test_the_dataset_summary_counts_checked_features_only() -> None:
    rng = np.random.default_rng(9)
    reference = pd.DataFrame({k: rng.normal(size=5_000) for k in "abcd"})
    current = pd.DataFrame(
        {
            "a": rng.normal(1, 1, size=1_000),
            "b": rng.normal(size=1_000),
            "c": np.r_[rng.normal(size=10), np.full(990, np.nan)],
            "d": rng.normal(size=1_000),
        }
    )
    profile = build_profile(reference, "svc")

    report = compare(profile, current)
    assert [f.feature for f in report.drifted_features] == ["a"]
    assert report.drift_share == pytest.approx(1 / 3)
    assert report.dataset_drift is False

    current["b"] += 1
    assert compare(profile, current).dataset_drift is True


def test_an_empty_current_frame_is_insufficient_everywhere() -> None:
    profile = build_profile(pd.DataFrame({"x": [1.0, 2.0], "tier": ["a", "b"]}), "svc")
    # What a reindexed empty frame looks like: object columns of NaN.
    current = pd.DataFrame().reindex(columns=["x", "tier"])

    report = compare(profile, current)
    assert {f.state for f in report.features} == {"insufficient_data"}
    assert report.drift_share is None


def test_a_missing_feature_is_named() -> None:
    profile = build_profile(pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]}), "risk_model_v1")
    with pytest.raises(ValueError, match=r"risk_model_v1: current data lacks .* \['y'\]"):
        compare(profile, pd.DataFrame({"x": [1.0]}))


def test_text_in_a_numeric_feature_is_named() -> None:
    profile = build_profile(pd.DataFrame({"x": [1.0, 2.0]}), "svc")
    with pytest.raises(ValueError, match="feature 'x' is numeric in the profile"):
        compare(profile, pd.DataFrame({"x": ["1.0", "high"]}))


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="ks_alpha"):
        DriftSettings(ks_alpha=0.0)
    with pytest.raises(ValueError, match="ks_max_reference must be at most 2000"):
        DriftSettings(ks_max_reference=5_000)
    with pytest.raises(ValueError, match="min_samples"):
        DriftSettings(min_samples=0)
