from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import ledoit_wolf

from trademaster.portfolio import covariance_from_returns, ledoit_wolf_shrinkage, solve_portfolio


def _returns(observations: int, holdings: int, seed: int = 0) -> np.ndarray:
    """Daily log returns with a common factor (correlated) and different volatilities."""
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0, 0.01, (observations, 1))
    vols = rng.uniform(0.005, 0.03, holdings)
    noise = rng.normal(size=(observations, holdings)) * vols
    return market * rng.uniform(0.5, 1.5, holdings) + noise


@pytest.mark.parametrize(("observations", "holdings"), [(20, 40), (60, 10), (500, 5), (3, 3)])
def test_matches_scikit_learns_ledoit_wolf(observations: int, holdings: int) -> None:
    returns = _returns(observations, holdings)
    expected, expected_shrinkage = ledoit_wolf(returns)

    np.testing.assert_allclose(covariance_from_returns(returns), expected, rtol=1e-10, atol=1e-18)
    assert ledoit_wolf_shrinkage(returns) == pytest.approx(expected_shrinkage, rel=1e-10)


@pytest.mark.parametrize(("observations", "holdings"), [(5, 50), (20, 60), (250, 30)])
def test_is_positive_definite_even_with_fewer_observations_than_holdings(
    observations: int, holdings: int
) -> None:
    returns = _returns(observations, holdings, seed=holdings)
    sample = np.cov(returns, rowvar=False, bias=True)

    shrunk = covariance_from_returns(returns)

    np.testing.assert_allclose(shrunk, shrunk.T)
    assert np.linalg.eigvalsh(shrunk)[0] > 0
    if observations <= holdings:
        assert np.linalg.eigvalsh(sample)[0] < 1e-12 * np.trace(sample)
    assert 0.0 < ledoit_wolf_shrinkage(returns) <= 1.0


def test_more_observations_need_less_shrinkage() -> None:
    few, many = _returns(30, 20, seed=1), _returns(3000, 20, seed=1)

    assert ledoit_wolf_shrinkage(many) < ledoit_wolf_shrinkage(few)


def test_fixed_shrinkage_spans_sample_covariance_to_scaled_identity() -> None:
    returns = _returns(40, 6)
    sample = np.cov(returns, rowvar=False, bias=True)

    np.testing.assert_allclose(covariance_from_returns(returns, shrinkage=0.0), sample)
    np.testing.assert_allclose(
        covariance_from_returns(returns, shrinkage=1.0), np.trace(sample) / 6 * np.eye(6)
    )


@pytest.mark.parametrize(
    ("returns", "shrinkage", "message"),
    [
        (np.ones(10), None, "matrix"),
        (np.ones((1, 4)), None, "at least 2 observations"),
        (np.array([[0.01, np.nan], [0.02, 0.01]]), None, "NaN"),
        (np.ones((5, 2)), 1.5, "shrinkage must lie in"),
    ],
)
def test_bad_input_is_refused(returns: np.ndarray, shrinkage: float | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        covariance_from_returns(returns, shrinkage)


def test_the_estimate_feeds_the_optimizer() -> None:
    returns = _returns(15, 30, seed=4)
    mu = returns.mean(axis=0)

    solution = solve_portfolio(mu, covariance_from_returns(returns), 0.1, 5.0)

    assert solution.converged
    assert not solution.covariance_repaired
    assert solution.weights.sum() == pytest.approx(1.0)
