"""Long-only mean-variance portfolio weights with a per-holding cap, in pure numpy.

    maximise   mu'w - (risk_aversion / 2) w' Sigma w
    subject to sum(w) = 1,  0 <= w <= max_weight

This file imports nothing but numpy: the exporter copies it unchanged next to the served
``model.py`` (Triton's python backend, numpy 1.26, no scipy), so training, validation and
serving run the same code.

Method
- Accelerated projected gradient (FISTA with O'Donoghue-Candes gradient restart, step
  1/L with L = risk_aversion * lambda_max) for global convergence; each step projects exactly
  onto the capped simplex (``project_capped_simplex``).
- Every ``POLISH_EVERY`` iterations the bounds active at the iterate are refined by
  primal-dual active-set steps, each solving the equality-constrained KKT system on the free
  holdings; a polished point is kept only when it is feasible and its duality gap passes.
  Polishing usually ends the solve exactly after a few dozen iterations; the gradient
  iterations alone still converge when it cannot (degenerate or flat problems).
- Stops when the Frank-Wolfe duality gap ``g'w - min_{v feasible} g'v`` (an upper bound on how
  far the utility is below the optimum) is at most ``tolerance`` times the problem's scale
  ``max(|mu|_inf, risk_aversion * |Sigma|_max)``, or after ``max_iterations``; the result is
  always feasible and says whether it converged.

Covariance estimates are noisy (few observations, float32 rounding) and may be slightly
indefinite, which would make the problem non-convex. The matrix is symmetrised, and when its
smallest eigenvalue is below ``EIGENVALUE_FLOOR * lambda_max`` every eigenvalue is raised to
that floor (eigenvalue clipping, which is the nearest such matrix in Frobenius norm). The floor
also keeps the problem strictly convex, so the weights are unique even for singular estimates
(duplicate holdings, fewer observations than holdings). ``Solution`` reports whether that
happened and the smallest eigenvalue seen.

``max_weight`` is feasible when ``n * max_weight >= 1``. Requests at exactly 1/n arrive
rounded (float32 1/3 is below 1/3), so a cap within ``FEASIBILITY_SLACK`` (relative) of 1/n is
raised to 1/n, which moves the bound by at most that slack; below that the problem is
infeasible and ``PortfolioProblemError`` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_TOLERANCE = 1e-10
DEFAULT_MAX_ITERATIONS = 5_000
EIGENVALUE_FLOOR = 1e-10
FEASIBILITY_SLACK = 1e-6
POLISH_EVERY = 10
POLISH_STEPS = 10
# A polished point may leave a bound by this much (relative to the cap) from rounding.
POLISH_BOUND_SLACK = 1e-12


class PortfolioProblemError(ValueError):
    """The inputs do not describe a solvable problem (shapes, NaN, infeasible cap)."""


@dataclass(frozen=True)
class RepairedCovariance:
    matrix: np.ndarray
    min_eigenvalue: float
    max_eigenvalue: float
    repaired: bool


@dataclass(frozen=True)
class Solution:
    weights: np.ndarray
    utility: float
    iterations: int
    converged: bool
    polished: bool
    duality_gap: float
    constraint_violation: float
    covariance_repaired: bool
    min_eigenvalue: float


def project_capped_simplex(values: np.ndarray, cap: float) -> np.ndarray:
    """Euclidean projection of ``values`` onto ``{w : 0 <= w <= cap, sum(w) = 1}``.

    The projection is ``clip(values - tau, 0, cap)`` for the shift ``tau`` at which the clipped
    values sum to 1. That sum is piecewise linear and non-increasing in ``tau``, with kinks at
    ``values`` and ``values - cap``: a bisection over the sorted kinks finds the linear piece
    holding the root, which is then solved exactly (O(n log n), no iteration tolerance).
    """
    y = np.asarray(values, dtype=np.float64)
    cap = min(float(cap), 1.0)
    kinks = np.unique(np.concatenate([y - cap, y]))

    def total(shift: float) -> float:
        return float(np.clip(y - shift, 0.0, cap).sum())

    lo, hi = 0, kinks.size - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if total(kinks[mid]) >= 1.0:
            lo = mid
        else:
            hi = mid
    sum_lo, sum_hi = total(kinks[lo]), total(kinks[hi])
    shift = kinks[lo]
    if sum_lo != sum_hi:
        shift += (sum_lo - 1.0) * (kinks[hi] - kinks[lo]) / (sum_lo - sum_hi)
    return np.clip(y - shift, 0.0, cap)


def frank_wolfe_gap(weights: np.ndarray, gradient: np.ndarray, cap: float) -> float:
    """``g'w - min_v g'v`` over the capped simplex: bounds the objective's distance to optimal.

    The minimising ``v`` fills the holdings with the smallest gradient up to the cap.
    """
    fill = np.clip(1.0 - cap * np.arange(weights.size), 0.0, cap)
    return max(0.0, float(gradient @ weights - np.sort(gradient) @ fill))


def repair_covariance(covariance: np.ndarray) -> RepairedCovariance:
    """Symmetrises and, if needed, clips eigenvalues up to ``EIGENVALUE_FLOOR * lambda_max``."""
    symmetric = 0.5 * (covariance + covariance.T)
    eigenvalues, vectors = np.linalg.eigh(symmetric)
    smallest, largest = float(eigenvalues[0]), float(eigenvalues[-1])
    if not largest > 0.0:
        raise PortfolioProblemError(
            f"covariance has no positive eigenvalue (largest {largest:.3g}): not a covariance"
        )
    floor = EIGENVALUE_FLOOR * largest
    if smallest >= floor:
        return RepairedCovariance(symmetric, smallest, largest, repaired=False)
    clipped = (vectors * np.maximum(eigenvalues, floor)) @ vectors.T
    return RepairedCovariance(0.5 * (clipped + clipped.T), smallest, largest, repaired=True)


def effective_cap(n: int, max_weight: float) -> float:
    """The cap the solver enforces; raises ``PortfolioProblemError`` when infeasible."""
    if not (math.isfinite(max_weight) and max_weight > 0.0):
        raise PortfolioProblemError(f"max_weight must be a positive number, got {max_weight}")
    if n * max_weight < 1.0 - FEASIBILITY_SLACK:
        raise PortfolioProblemError(
            f"infeasible: max_weight {max_weight:.6g} with {n} holdings allows at most "
            f"{n * max_weight:.6g} of the portfolio; it must be at least 1/n = {1.0 / n:.6g}"
        )
    return min(1.0, max(max_weight, 1.0 / n))


def _validated(
    expected_returns: np.ndarray, covariance: np.ndarray, risk_aversion: float
) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(expected_returns, dtype=np.float64)
    sigma = np.asarray(covariance, dtype=np.float64)
    if mu.ndim != 1 or mu.size == 0:
        raise PortfolioProblemError(
            f"expected_returns must be a non-empty vector, got shape {mu.shape}"
        )
    if sigma.shape != (mu.size, mu.size):
        raise PortfolioProblemError(
            f"covariance must be {mu.size}x{mu.size} to match expected_returns, "
            f"got shape {sigma.shape}"
        )
    if not np.isfinite(mu).all():
        raise PortfolioProblemError("expected_returns contains NaN or infinity")
    if not np.isfinite(sigma).all():
        raise PortfolioProblemError("covariance contains NaN or infinity")
    if not (math.isfinite(risk_aversion) and risk_aversion > 0.0):
        raise PortfolioProblemError(f"risk_aversion must be a positive number, got {risk_aversion}")
    return mu, sigma


def _accelerated_steps(
    start: np.ndarray,
    hessian: np.ndarray,
    mu: np.ndarray,
    cap: float,
    step: float,
    count: int,
) -> np.ndarray:
    """``count`` FISTA steps from ``start`` (momentum restarted when it stops helping)."""
    x, y, theta = start, start, 1.0
    for _ in range(count):
        x_next = project_capped_simplex(y - step * (hessian @ y - mu), cap)
        if float((y - x_next) @ (x_next - x)) > 0.0:
            theta, y = 1.0, x_next
        else:
            theta_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * theta * theta))
            y = x_next + ((theta - 1.0) / theta_next) * (x_next - x)
            theta = theta_next
        x = x_next
    return x


def _solve_free_set(
    hessian: np.ndarray, mu: np.ndarray, cap: float, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, float] | None:
    """Weights and budget multiplier with ``lower`` at 0, ``upper`` at the cap, the rest free.

    Solves ``[H_FF -1; 1' 0] [w_F; nu] = [mu_F - H_FU cap; 1 - cap |U|]``; None when singular.
    """
    free = ~(lower | upper)
    weights = np.where(upper, cap, 0.0)
    gradient_fixed = hessian[:, upper] @ weights[upper] - mu
    if not free.any():
        if abs(weights.sum() - 1.0) > 1e-12:
            return None
        # Any nu between the largest gradient at the cap and the smallest at zero works.
        high = float(gradient_fixed[upper].max())
        if not lower.any():
            return weights, high
        return weights, 0.5 * (high + float(gradient_fixed[lower].min()))
    m = int(free.sum())
    system = np.zeros((m + 1, m + 1))
    system[:m, :m] = hessian[np.ix_(free, free)]
    system[:m, m] = -1.0
    system[m, :m] = 1.0
    rhs = np.empty(m + 1)
    rhs[:m] = -gradient_fixed[free]
    rhs[m] = 1.0 - cap * float(upper.sum())
    try:
        solution = np.linalg.solve(system, rhs)
    except np.linalg.LinAlgError:
        return None
    if not np.isfinite(solution).all():
        return None
    weights[free] = solution[:m]
    return weights, float(solution[m])


def _polish(
    start: np.ndarray, hessian: np.ndarray, mu: np.ndarray, cap: float, step: float
) -> np.ndarray | None:
    """Primal-dual active-set steps from the bounds active after one projected step."""
    trial = project_capped_simplex(start - step * (hessian @ start - mu), cap)
    lower, upper = trial <= 0.0, trial >= cap
    for _ in range(POLISH_STEPS):
        solved = _solve_free_set(hessian, mu, cap, lower, upper)
        if solved is None:
            return None
        weights, nu = solved
        moved = weights - step * (hessian @ weights - mu - nu)
        new_lower, new_upper = moved <= 0.0, moved >= cap
        if np.array_equal(new_lower, lower) and np.array_equal(new_upper, upper):
            return weights
        lower, upper = new_lower, new_upper
    return None


def constraint_violation(weights: np.ndarray, max_weight: float) -> float:
    """Largest breach of the budget, long-only or cap constraint (0 when feasible)."""
    return max(
        abs(float(weights.sum()) - 1.0),
        float(np.max(-weights, initial=0.0)),
        float(np.max(weights - max_weight, initial=0.0)),
    )


def solve_portfolio(
    expected_returns: np.ndarray,
    covariance: np.ndarray,
    max_weight: float,
    risk_aversion: float,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
) -> Solution:
    """Optimal weights for one portfolio; see the module docstring for the method."""
    risk_aversion, max_weight = float(risk_aversion), float(max_weight)
    mu, sigma = _validated(expected_returns, covariance, risk_aversion)
    cap = effective_cap(mu.size, max_weight)
    repaired = repair_covariance(sigma)
    hessian = risk_aversion * repaired.matrix
    step = 1.0 / (risk_aversion * repaired.max_eigenvalue)
    target = tolerance * max(float(np.abs(mu).max()), float(np.abs(hessian).max()))

    def gap(weights: np.ndarray) -> float:
        return frank_wolfe_gap(weights, hessian @ weights - mu, cap)

    def feasible(weights: np.ndarray) -> bool:
        slack = POLISH_BOUND_SLACK * max(cap, 1.0)
        return bool(weights.min() >= -slack and weights.max() <= cap + slack)

    weights = np.full(mu.size, 1.0 / mu.size)
    iterations, polished, converged = 0, False, False
    while True:
        candidate = _polish(weights, hessian, mu, cap, step)
        if candidate is not None and feasible(candidate) and gap(candidate) <= target:
            weights, polished, converged = np.clip(candidate, 0.0, cap), True, True
            break
        if gap(weights) <= target:
            converged = True
            break
        if iterations >= max_iterations:
            break
        count = min(POLISH_EVERY, max_iterations - iterations)
        weights = _accelerated_steps(weights, hessian, mu, cap, step, count)
        iterations += count
    return Solution(
        weights=weights,
        utility=float(mu @ weights - 0.5 * weights @ hessian @ weights),
        iterations=iterations,
        converged=converged,
        polished=polished,
        duality_gap=gap(weights),
        constraint_violation=constraint_violation(weights, max_weight),
        covariance_repaired=repaired.repaired,
        min_eigenvalue=repaired.min_eigenvalue,
    )
