"""Long-only mean-variance portfolio weights with a per-holding cap, in pure numpy.

    maximise   mu'w - (risk_aversion / 2) w' Sigma w
    subject to sum(w) = 1,  0 <= w <= max_weight

This file imports nothing but numpy: the exporter copies it unchanged next to the served
``model.py`` (Triton's python backend, numpy 1.26, no scipy), so training, validation and
serving run the same code.

Method
- A few accelerated projected-gradient steps (FISTA with O'Donoghue-Candes gradient restart,
  step 1/L with L = risk_aversion * lambda_max), each an exact projection onto the capped
  simplex (``project_capped_simplex``), pick out which holdings sit at 0 or at the cap.
- A primal active-set method then finishes from that point: each step solves the KKT system
  on the free holdings and moves as far towards it as the bounds allow; a bound whose
  multiplier has the wrong sign is released. It stays feasible, never increases the
  objective, and ends at the exact optimum (to rounding), usually in a handful of steps.
- Should it not finish (its step cap), more gradient steps follow and it is tried again; the
  best point so far is kept, so the answer is always feasible.
- The result is certified by the Frank-Wolfe duality gap ``g'w - min_{v feasible} g'v``, an
  upper bound on how far the utility is below the optimum. The solve has converged when the
  gap is at most ``tolerance`` times the problem's scale ``max(|mu|_inf, risk_aversion *
  |Sigma|_max)``; otherwise it stops after ``max_iterations`` gradient steps and says so.

Covariance estimates are noisy (few observations, float32 rounding) and may be slightly
indefinite, which would make the problem non-convex. The matrix is symmetrised, and when its
smallest eigenvalue is below ``EIGENVALUE_FLOOR * lambda_max`` every eigenvalue is raised to
that floor (eigenvalue clipping, which is the nearest such matrix in Frobenius norm). The floor
also keeps the problem strictly convex, so the weights are unique even for singular estimates
(duplicate holdings, fewer observations than holdings). ``Solution`` reports whether that
happened and the smallest eigenvalue seen.

``risk_aversion`` must be positive (at 0 the problem is a linear program, not this model).
``max_weight`` is feasible when ``n * max_weight >= 1``. A cap of exactly 1/n arrives rounded
(float32(1/25) * 25 < 1), so a cap within ``FEASIBILITY_SLACK`` (relative) of 1/n is raised to
1/n, which moves the bound by at most that slack; below that the problem is infeasible and
``PortfolioProblemError`` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_TOLERANCE = 1e-10
DEFAULT_MAX_ITERATIONS = 5_000
EIGENVALUE_FLOOR = 1e-10
FEASIBILITY_SLACK = 1e-6
WARM_START_ITERATIONS = 10
RETRY_ITERATIONS = 20
ACTIVE_SET_STEPS_PER_HOLDING = 4
MULTIPLIER_TOLERANCE = 1e-13


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
    """``weights`` (float64, feasible) and how they were found.

    ``utility`` is the objective on the (repaired) covariance; ``iterations`` counts gradient
    steps; ``polished``: the active-set method produced the answer; ``duality_gap`` bounds the
    utility's distance to the optimum; ``constraint_violation`` is the largest breach of the
    budget or the bounds as requested (the cap before any rounding up to 1/n).
    """

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
    kinks = np.sort(np.concatenate([y - cap, y]))

    def clipped(shift: float) -> np.ndarray:
        return np.minimum(np.maximum(y - shift, 0.0), cap)

    lo, hi = 0, kinks.size - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if clipped(kinks[mid]).sum() >= 1.0:
            lo = mid
        else:
            hi = mid
    sum_lo, sum_hi = float(clipped(kinks[lo]).sum()), float(clipped(kinks[hi]).sum())
    shift = float(kinks[lo])
    if sum_lo != sum_hi:
        shift += (sum_lo - 1.0) * float(kinks[hi] - kinks[lo]) / (sum_lo - sum_hi)
    return clipped(shift)


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
    """Minimiser and budget multiplier with ``lower`` at 0, ``upper`` at the cap, the rest free.

    Solves ``[H_FF -1; 1' 0] [w_F; nu] = [mu_F - H_FU cap; 1 - cap |U|]``; None when singular.
    With nothing free, ``nu`` is the largest gradient at the cap (the tightest valid value).
    """
    free = ~(lower | upper)
    weights = np.where(upper, cap, 0.0)
    gradient_fixed = hessian[:, upper] @ weights[upper] - mu
    if not free.any():
        return weights, float(gradient_fixed[upper].max()) if upper.any() else 0.0
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


def _step_room(weights: np.ndarray, direction: np.ndarray, cap: float) -> np.ndarray:
    """How far along ``direction`` each holding can go before reaching a bound."""
    room = np.full(weights.size, np.inf)
    down, up = direction < 0.0, direction > 0.0
    room[down] = -weights[down] / direction[down]
    room[up] = (cap - weights[up]) / direction[up]
    return room


def _active_set(
    start: np.ndarray, hessian: np.ndarray, mu: np.ndarray, cap: float, scale: float
) -> np.ndarray | None:
    """Primal active-set method from the feasible ``start``; None if it does not finish.

    The bounds active at ``start`` form the working set. Each step moves towards the minimiser
    on the working set as far as the bounds allow, adding the bound that blocks it; at that
    minimiser the bound with the most negative multiplier is released, until none is negative.
    Every iterate stays feasible and the objective never increases (strictly convex problem).
    """
    weights = start.copy()
    lower, upper = weights <= 0.0, weights >= cap
    for _ in range(ACTIVE_SET_STEPS_PER_HOLDING * weights.size + 10):
        solved = _solve_free_set(hessian, mu, cap, lower, upper)
        if solved is None:
            return None
        target, nu = solved
        direction = target - weights
        direction[lower | upper] = 0.0
        room = _step_room(weights, direction, cap)
        blocking = int(np.argmin(room))
        if room[blocking] < 1.0:
            weights = np.clip(weights + room[blocking] * direction, 0.0, cap)
            hits_cap = bool(direction[blocking] > 0.0)
            upper[blocking], lower[blocking] = hits_cap, not hits_cap
            weights[blocking] = cap if hits_cap else 0.0
            continue
        weights = np.clip(target, 0.0, cap)
        multipliers = hessian @ weights - mu - nu
        # Negative: the objective falls when the holding leaves its bound.
        released = np.where(lower, multipliers, np.where(upper, -multipliers, np.inf))
        worst = int(np.argmin(released))
        if released[worst] >= -MULTIPLIER_TOLERANCE * scale:
            return weights
        lower[worst] = upper[worst] = False
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
    scale = max(float(np.abs(mu).max()), float(np.abs(hessian).max()))
    target = tolerance * scale

    def gap(weights: np.ndarray) -> float:
        return frank_wolfe_gap(weights, hessian @ weights - mu, cap)

    weights = np.full(mu.size, 1.0 / mu.size)
    best, best_gap, polished = weights, gap(weights), False
    iterations = 0
    while best_gap > target:
        budget = RETRY_ITERATIONS if iterations else WARM_START_ITERATIONS
        count = min(budget, max_iterations - iterations)
        weights = _accelerated_steps(weights, hessian, mu, cap, step, count)
        iterations += count
        exact = _active_set(weights, hessian, mu, cap, scale)
        if exact is not None and (exact_gap := gap(exact)) <= best_gap:
            best, best_gap, polished = exact, exact_gap, True
        if (weights_gap := gap(weights)) < best_gap:
            best, best_gap, polished = weights, weights_gap, False
        if iterations >= max_iterations:
            break
    return Solution(
        weights=best,
        utility=float(mu @ best - 0.5 * best @ hessian @ best),
        iterations=iterations,
        converged=best_gap <= target,
        polished=polished,
        duality_gap=best_gap,
        constraint_violation=constraint_violation(best, max_weight),
        covariance_repaired=repaired.repaired,
        min_eigenvalue=repaired.min_eigenvalue,
    )
