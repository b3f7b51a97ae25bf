from __future__ import annotations

import math

import numpy as np
import pytest

from trademaster.price_lstm.conformal import (
    conformal_quantile,
    interval_coverage,
    normalised_scores,
)


def test_quantile_is_the_finite_sample_rank() -> None:
    scores = np.arange(1.0, 10.0)  # n = 9: rank ceil(10 * 0.9) = 9

    assert conformal_quantile(scores, 0.9) == 9.0
    assert conformal_quantile(scores, 0.5) == 5.0


def test_too_few_scores_give_an_unbounded_interval() -> None:
    assert conformal_quantile(np.ones(5), 0.9) == math.inf


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="coverage"):
        conformal_quantile(np.ones(10), 1.0)
    with pytest.raises(ValueError, match="finite"):
        conformal_quantile(np.array([1.0, np.nan]), 0.9)


def test_coverage_on_gaussian_noise_is_ninety_percent() -> None:
    rng = np.random.default_rng(0)
    point = rng.normal(size=22_000)
    actual = point + rng.normal(size=22_000)
    volatility = np.ones(22_000)
    calibration, test = slice(0, 2_000), slice(2_000, None)

    q = conformal_quantile(
        normalised_scores(actual[calibration], point[calibration], volatility[calibration])
    )
    coverage = interval_coverage(actual[test], point[test] - q, point[test] + q)

    assert q == pytest.approx(1.645, abs=0.1)
    assert coverage == pytest.approx(0.9, abs=0.015)


def test_normalised_scores_cover_calm_and_volatile_windows_alike() -> None:
    # Noise scale known per window (10x apart): scaling scores by it gives 90% in both regimes,
    # while plain residuals over-cover calm windows and under-cover volatile ones.
    rng = np.random.default_rng(1)
    n = 24_000
    volatility = np.where(rng.random(n) < 0.5, 0.002, 0.02)
    actual = volatility * rng.standard_t(df=5, size=n)
    point = np.zeros(n)
    calibration, test = slice(0, 4_000), slice(4_000, None)
    calm = volatility[test] < 0.01

    q = conformal_quantile(
        normalised_scores(actual[calibration], point[calibration], volatility[calibration])
    )
    plain = conformal_quantile(np.abs(actual[calibration]))
    inside = np.abs(actual[test]) <= q * volatility[test]
    inside_plain = np.abs(actual[test]) <= plain

    assert inside.mean() == pytest.approx(0.9, abs=0.015)
    assert inside[calm].mean() == pytest.approx(0.9, abs=0.02)
    assert inside[~calm].mean() == pytest.approx(0.9, abs=0.02)
    assert inside_plain[calm].mean() > 0.97
    assert inside_plain[~calm].mean() < 0.85


def test_coverage_counts_the_interval_edges_as_inside() -> None:
    actual = np.array([0.0, 1.0, 2.0, 3.0])

    assert interval_coverage(actual, np.full(4, 1.0), np.full(4, 2.0)) == 0.5
    assert math.isnan(interval_coverage(np.array([]), np.array([]), np.array([])))
