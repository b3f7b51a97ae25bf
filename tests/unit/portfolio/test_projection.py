from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from trademaster.portfolio.optimizer import frank_wolfe_gap, project_capped_simplex


def _bisection_projection(y: np.ndarray, cap: float) -> np.ndarray:
    """Independent reference: root of sum(clip(y - tau, 0, cap)) = 1 by Brent's method."""
    shift = brentq(
        lambda tau: np.clip(y - tau, 0.0, cap).sum() - 1.0,
        y.min() - cap - 1.0,
        y.max() + 1.0,
        xtol=1e-15,
        rtol=4 * np.finfo(float).eps,
    )
    return np.clip(y - shift, 0.0, cap)


def _simplex_projection(y: np.ndarray) -> np.ndarray:
    """Sort-based projection onto the probability simplex (Duchi et al. 2008)."""
    u = np.sort(y)[::-1]
    cumulative = np.cumsum(u) - 1.0
    rho = np.nonzero(u - cumulative / np.arange(1, y.size + 1) > 0)[0][-1]
    return np.maximum(y - cumulative[rho] / (rho + 1.0), 0.0)


def _cases(count: int) -> list[tuple[np.ndarray, float]]:
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(count):
        n = int(rng.integers(1, 80))
        cap = float(rng.uniform(1.0 / n, 1.0))
        cases.append((rng.normal(0.0, rng.choice([1e-3, 1.0, 100.0]), n), cap))
    return cases


@pytest.mark.parametrize(("y", "cap"), _cases(60))
def test_projection_is_feasible_and_matches_an_independent_root_finder(
    y: np.ndarray, cap: float
) -> None:
    projected = project_capped_simplex(y, cap)

    assert projected.sum() == pytest.approx(1.0, abs=1e-12)
    assert projected.min() >= 0.0
    assert projected.max() <= cap
    np.testing.assert_allclose(projected, _bisection_projection(y, cap), atol=1e-10)


def test_projection_is_the_closest_feasible_point() -> None:
    rng = np.random.default_rng(1)
    y, cap = rng.normal(size=12), 0.2
    projected = project_capped_simplex(y, cap)

    # Variational inequality: (y - P(y))'(v - P(y)) <= 0 for every feasible v.
    for _ in range(200):
        v = project_capped_simplex(rng.normal(size=12) * 3, cap)
        assert (y - projected) @ (v - projected) <= 1e-12


def test_without_a_cap_it_is_the_simplex_projection() -> None:
    rng = np.random.default_rng(2)
    for _ in range(20):
        y = rng.normal(size=int(rng.integers(1, 30)))

        np.testing.assert_allclose(project_capped_simplex(y, 1.0), _simplex_projection(y))


def test_a_feasible_point_is_its_own_projection() -> None:
    w = np.array([0.1, 0.3, 0.25, 0.35])

    np.testing.assert_allclose(project_capped_simplex(w, 0.35), w, atol=1e-15)


def test_a_cap_of_one_over_n_leaves_only_equal_weights() -> None:
    np.testing.assert_allclose(
        project_capped_simplex(np.array([5.0, -3.0, 0.0, 1.0]), 0.25), np.full(4, 0.25)
    )


def test_ties_and_constant_vectors() -> None:
    np.testing.assert_allclose(project_capped_simplex(np.full(5, 7.0), 0.5), np.full(5, 0.2))
    np.testing.assert_allclose(
        project_capped_simplex(np.array([1.0, 1.0, 0.0]), 0.4), [0.4, 0.4, 0.2]
    )


def test_frank_wolfe_gap_is_zero_at_the_optimum_and_positive_elsewhere() -> None:
    gradient = np.array([0.3, -0.1, 0.2, 0.0])
    best = np.array([0.0, 0.5, 0.0, 0.5])  # the two smallest gradients, filled to the cap

    assert frank_wolfe_gap(best, gradient, 0.5) == 0.0
    assert frank_wolfe_gap(np.full(4, 0.25), gradient, 0.5) == pytest.approx(
        gradient.mean() - (-0.1 * 0.5 + 0.0 * 0.5)
    )
