"""The same portfolio problem solved by scipy, as an independent reference for the optimizer.

Same objective and constraints as ``trademaster.portfolio.optimizer`` (including the cap
rounded up to 1/n within the feasibility slack), on the symmetrised covariance as given: no
eigenvalue repair, so a disagreement would also expose a repair that changes the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, minimize

from trademaster.portfolio.optimizer import effective_cap
from trademaster.portfolio.problems import PortfolioProblem

METHOD = "SLSQP"
MAX_ITERATIONS = 1_000
# SLSQP's ftol is absolute: the objective is divided by its scale so that 1e-12 means the same
# for every problem (unscaled, a quarter of highly correlated cases stopped early at the
# iteration limit with the budget broken by up to 0.1).
FUNCTION_TOLERANCE = 1e-12


@dataclass(frozen=True)
class ReferenceSolution:
    weights: np.ndarray
    success: bool
    message: str
    iterations: int


def utility(problem: PortfolioProblem, weights: np.ndarray) -> float:
    """``mu'w - (risk_aversion / 2) w' Sigma w`` on the symmetrised input covariance."""
    sigma = 0.5 * (problem.covariance + problem.covariance.T)
    return float(
        problem.expected_returns @ weights - 0.5 * problem.risk_aversion * weights @ sigma @ weights
    )


def objective_scale(problem: PortfolioProblem) -> float:
    """Natural size of the utility over the simplex, to make differences relative."""
    return max(
        float(np.abs(problem.expected_returns).max()),
        problem.risk_aversion * float(np.abs(problem.covariance).max()),
    )


def solve_with_scipy(problem: PortfolioProblem) -> ReferenceSolution:
    """SLSQP from equal weights, with exact gradients, on the objective divided by its scale."""
    n = problem.n
    scale = objective_scale(problem)
    hessian = problem.risk_aversion * 0.5 * (problem.covariance + problem.covariance.T) / scale
    mu = problem.expected_returns / scale
    cap = effective_cap(n, problem.max_weight)
    result = minimize(
        lambda w: 0.5 * w @ hessian @ w - mu @ w,
        np.full(n, 1.0 / n),
        jac=lambda w: hessian @ w - mu,
        method=METHOD,
        bounds=Bounds(np.zeros(n), np.full(n, cap)),
        constraints=[LinearConstraint(np.ones((1, n)), 1.0, 1.0)],
        options={"maxiter": MAX_ITERATIONS, "ftol": FUNCTION_TOLERANCE},
    )
    return ReferenceSolution(
        weights=np.asarray(result.x, dtype=np.float64),
        success=bool(result.success),
        message=str(result.message),
        iterations=int(result.nit),
    )
