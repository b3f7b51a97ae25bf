from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.unit.portfolio.support import top_level_imports
from trademaster.portfolio import optimizer
from trademaster.portfolio.optimizer import (
    PortfolioProblemError,
    Solution,
    repair_covariance,
    solve_portfolio,
)
from trademaster.portfolio.problems import COVARIANCE_KINDS, PortfolioProblem, random_problem
from trademaster.portfolio.reference import objective_scale, solve_with_scipy, utility
from trademaster.portfolio.validation import bound_violation, sum_violation

TOLERANCE = 1e-8


def _solve(problem: PortfolioProblem) -> Solution:
    return solve_portfolio(
        problem.expected_returns, problem.covariance, problem.max_weight, problem.risk_aversion
    )


def _assert_matches_scipy(problem: PortfolioProblem, weights: np.ndarray) -> None:
    reference = solve_with_scipy(problem)
    ours, theirs = utility(problem, weights), utility(problem, reference.weights)
    scale = max(abs(theirs), objective_scale(problem))
    assert reference.success, reference.message
    assert abs(ours - theirs) / scale < TOLERANCE
    assert sum_violation(weights) < 1e-9
    assert bound_violation(weights, problem.max_weight) < 1e-9


@pytest.mark.parametrize("kind", COVARIANCE_KINDS)
def test_matches_scipy_on_random_problems(kind: str) -> None:
    rng = np.random.default_rng(COVARIANCE_KINDS.index(kind))
    for _ in range(12):
        problem = random_problem(rng, kind=kind)

        solution = _solve(problem)

        assert solution.converged
        assert solution.duality_gap <= optimizer.DEFAULT_TOLERANCE * objective_scale(problem) * 10
        _assert_matches_scipy(problem, solution.weights)


def test_closed_form_when_no_bound_is_active() -> None:
    # Interior optimum: w = Sigma^-1 (mu - nu 1) / gamma with nu fixing the budget.
    sigma = np.array([[0.04, 0.006, 0.0], [0.006, 0.09, 0.01], [0.0, 0.01, 0.0625]])
    mu, gamma = np.array([0.06, 0.08, 0.07]), 4.0
    inverse = np.linalg.inv(sigma)
    nu = (inverse @ mu).sum() / inverse.sum() - gamma / inverse.sum()
    expected = inverse @ (mu - nu) / gamma

    solution = solve_portfolio(mu, sigma, 1.0, gamma)

    assert expected.min() > 0
    np.testing.assert_allclose(expected.sum(), 1.0)
    np.testing.assert_allclose(solution.weights, expected, atol=1e-12)
    assert solution.polished


def test_the_cap_binds_on_the_best_holding() -> None:
    mu = np.array([0.30, 0.05, 0.04, 0.03])

    solution = solve_portfolio(mu, 0.04 * np.eye(4), 0.4, 1.0)

    assert solution.weights[0] == pytest.approx(0.4, abs=1e-12)
    assert solution.weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert solution.weights.max() <= 0.4


def test_negligible_risk_aversion_puts_everything_on_the_best_holding() -> None:
    mu = np.array([0.02, 0.09, 0.05])

    solution = solve_portfolio(mu, 0.04 * np.eye(3), 1.0, 1e-9)

    np.testing.assert_allclose(solution.weights, [0.0, 1.0, 0.0], atol=1e-12)


def test_a_cap_of_one_over_n_leaves_only_equal_weights() -> None:
    mu = np.array([0.3, 0.01, -0.2])

    solution = solve_portfolio(mu, 0.04 * np.eye(3), 1.0 / 3.0, 2.0)

    np.testing.assert_allclose(solution.weights, np.full(3, 1.0 / 3.0), atol=1e-15)


def test_a_cap_rounded_below_one_over_n_by_float32_is_feasible() -> None:
    n = 25
    cap = float(np.float32(1.0 / n))
    assert n * cap < 1.0
    mu = np.linspace(-0.1, 0.2, n)

    solution = solve_portfolio(mu, np.eye(n), cap, 2.0)

    np.testing.assert_allclose(solution.weights, np.full(n, 1.0 / n), atol=1e-15)
    assert solution.constraint_violation < 1e-7


@pytest.mark.parametrize(("n", "max_weight"), [(3, 0.2), (10, 0.05), (2, 0.4999)])
def test_infeasible_cap_is_refused_with_a_clear_message(n: int, max_weight: float) -> None:
    with pytest.raises(PortfolioProblemError, match="infeasible") as info:
        solve_portfolio(np.zeros(n), np.eye(n), max_weight, 1.0)

    assert f"{n} holdings" in str(info.value)
    assert f"1/n = {1.0 / n:.6g}" in str(info.value)


@pytest.mark.parametrize(
    ("mu", "sigma", "max_weight", "risk_aversion", "message"),
    [
        ([0.1, np.nan], np.eye(2), 1.0, 1.0, "expected_returns contains NaN"),
        ([0.1, 0.2], [[1.0, np.inf], [0.0, 1.0]], 1.0, 1.0, "covariance contains NaN"),
        ([0.1, 0.2], np.eye(3), 1.0, 1.0, "covariance must be 2x2"),
        ([[0.1, 0.2]], np.eye(2), 1.0, 1.0, "non-empty vector"),
        ([], np.eye(0), 1.0, 1.0, "non-empty vector"),
        ([0.1, 0.2], np.eye(2), 1.0, 0.0, "risk_aversion must be a positive"),
        ([0.1, 0.2], np.eye(2), 1.0, np.nan, "risk_aversion must be a positive"),
        ([0.1, 0.2], np.eye(2), -0.5, 1.0, "max_weight must be a positive"),
        ([0.1, 0.2], np.eye(2), np.nan, 1.0, "max_weight must be a positive"),
        ([0.1, 0.2], -np.eye(2), 1.0, 1.0, "no positive eigenvalue"),
    ],
)
def test_invalid_problems_are_refused(
    mu: object, sigma: object, max_weight: float, risk_aversion: float, message: str
) -> None:
    with pytest.raises(PortfolioProblemError, match=message):
        solve_portfolio(np.asarray(mu), np.asarray(sigma), max_weight, risk_aversion)


def test_an_indefinite_covariance_is_clipped_to_the_nearest_psd_matrix() -> None:
    # Pairwise-estimated correlations that no joint distribution has: one eigenvalue < 0.
    correlation = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    vols = np.array([0.2, 0.3, 0.25])
    sigma = correlation * np.outer(vols, vols)
    mu = np.array([0.05, 0.07, 0.06])
    assert np.linalg.eigvalsh(sigma)[0] < -0.01

    solution = solve_portfolio(mu, sigma, 0.6, 3.0)

    assert solution.covariance_repaired
    assert solution.min_eigenvalue < -0.01
    assert solution.converged
    repaired = repair_covariance(sigma).matrix
    assert np.linalg.eigvalsh(repaired)[0] > 0
    _assert_matches_scipy(PortfolioProblem(mu, repaired, 0.6, 3.0, "repaired"), solution.weights)


def test_repair_keeps_a_positive_definite_matrix_as_it_is() -> None:
    sigma = np.array([[0.04, 0.01], [0.01, 0.09]])

    repaired = repair_covariance(sigma)

    assert not repaired.repaired
    np.testing.assert_array_equal(repaired.matrix, sigma)


def test_repair_raises_only_the_eigenvalues_below_the_floor() -> None:
    vectors = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))[0]
    sigma = (vectors * np.array([-1e-3, 0.0, 0.5, 2.0])) @ vectors.T

    repaired = repair_covariance(sigma)

    floor = optimizer.EIGENVALUE_FLOOR * 2.0
    np.testing.assert_allclose(
        np.linalg.eigvalsh(repaired.matrix), [floor, floor, 0.5, 2.0], atol=1e-12
    )


def test_an_asymmetric_covariance_is_symmetrised() -> None:
    rng = np.random.default_rng(3)
    problem = random_problem(rng, n=8, kind="factor")
    noise = np.triu(rng.normal(0.0, 0.01, (8, 8)), 1)

    skewed = solve_portfolio(
        problem.expected_returns, problem.covariance + noise - noise.T, 0.5, 2.0
    )
    symmetric = solve_portfolio(problem.expected_returns, problem.covariance, 0.5, 2.0)

    np.testing.assert_allclose(skewed.weights, symmetric.weights, atol=1e-12)


def test_float32_inputs_from_a_noisy_singular_estimate() -> None:
    rng = np.random.default_rng(11)
    problem = random_problem(rng, n=40, kind="sample")
    sigma = (problem.covariance + rng.normal(0, 1e-4, (40, 40))).astype(np.float32)

    cap, gamma = float(np.float32(0.1)), float(np.float32(5.0))

    solution = solve_portfolio(problem.expected_returns.astype(np.float32), sigma, cap, gamma)

    assert solution.converged
    assert solution.constraint_violation < 1e-12


def test_a_single_holding_gets_everything() -> None:
    solution = solve_portfolio(np.array([0.05]), np.array([[0.04]]), 1.0, 3.0)

    np.testing.assert_array_equal(solution.weights, [1.0])


def test_gradient_steps_alone_converge_when_the_active_set_method_cannot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(optimizer, "_active_set", lambda *args: None)
    problem = random_problem(np.random.default_rng(5), n=25, kind="factor")

    solution = _solve(problem)

    assert solution.converged
    assert not solution.polished
    assert solution.iterations > optimizer.WARM_START_ITERATIONS
    reference = solve_with_scipy(problem)
    assert utility(problem, solution.weights) >= utility(problem, reference.weights) - 1e-9


def test_an_iteration_cap_still_returns_feasible_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(optimizer, "_active_set", lambda *args: None)
    problem = random_problem(np.random.default_rng(6), n=30, kind="correlated")

    solution = solve_portfolio(
        problem.expected_returns, problem.covariance, 0.2, problem.risk_aversion, max_iterations=3
    )

    assert solution.iterations == 3
    assert not solution.converged
    assert solution.duality_gap > 0
    assert solution.constraint_violation < 1e-12


def test_the_served_solver_imports_nothing_but_numpy() -> None:
    # The exporter copies this file next to Triton's model.py (serving env: numpy, no scipy).
    imported = top_level_imports(Path(optimizer.__file__))

    assert imported <= {"__future__", "math", "dataclasses", "numpy"}
