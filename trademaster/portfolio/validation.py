"""The optimizer checked against scipy on random problems: agreement, constraints and time.

A solver is anything with ``solve_portfolio(mu, sigma, max_weight, risk_aversion)`` returning
an object with ``weights``, ``converged``, ``duality_gap``, ``iterations``, ``polished`` and
``covariance_repaired`` (this package's optimizer, or a registered version's copy of it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import numpy as np

from trademaster.portfolio.problems import PortfolioProblem
from trademaster.portfolio.reference import (
    ReferenceSolution,
    objective_scale,
    solve_with_scipy,
    utility,
)

# Promotion and export require: the utility within this (relative to max(|utility|, scale))
# of scipy's on every problem, and no constraint broken by more than CONSTRAINT_TOLERANCE.
# Measured agreement is ~1e-11 (scipy's ftol is 1e-12), so this leaves room for rounding only.
OBJECTIVE_TOLERANCE = 1e-8
CONSTRAINT_TOLERANCE = 1e-6
# "At least as good as scipy" forgives differences at rounding level.
AS_GOOD_SLACK = 1e-12

SolveFn = Callable[[np.ndarray, np.ndarray, float, float], Any]
T = TypeVar("T")


@dataclass(frozen=True)
class TimedReference:
    solution: ReferenceSolution
    seconds: float


@dataclass(frozen=True)
class CaseResult:
    relative_difference: float
    at_least_as_good: bool
    sum_violation: float
    bound_violation: float
    seconds: float
    converged: bool
    relative_gap: float
    iterations: int
    polished: bool
    repaired: bool


def sum_violation(weights: np.ndarray) -> float:
    return abs(float(np.sum(weights)) - 1.0)


def bound_violation(weights: np.ndarray, max_weight: float) -> float:
    """How far any weight is below 0 or above ``max_weight`` (0 when within bounds)."""
    return max(0.0, float(-np.min(weights)), float(np.max(weights)) - max_weight)


def single_threaded_blas() -> AbstractContextManager[Any]:
    """Limits BLAS to one thread: on matrices this small, threads only add hand-offs (solves
    ran ~8x slower with two threads on a busy two-core machine), and timings then do not
    depend on the machine's core count. (threadpoolctl comes with scikit-learn.)"""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _timed(function: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def solve_references(problems: Sequence[PortfolioProblem]) -> list[TimedReference]:
    references = []
    for problem in problems:
        solution, seconds = _timed(partial(solve_with_scipy, problem))
        references.append(TimedReference(solution, seconds))
    return references


def evaluate_case(
    problem: PortfolioProblem, reference: ReferenceSolution, solve: SolveFn
) -> CaseResult:
    solution, seconds = _timed(
        lambda: solve(
            problem.expected_returns, problem.covariance, problem.max_weight, problem.risk_aversion
        )
    )
    weights = np.asarray(solution.weights, dtype=np.float64)
    ours, theirs = utility(problem, weights), utility(problem, reference.weights)
    scale = objective_scale(problem)
    return CaseResult(
        relative_difference=abs(ours - theirs) / max(abs(theirs), scale),
        at_least_as_good=ours >= theirs - AS_GOOD_SLACK * scale,
        sum_violation=sum_violation(weights),
        bound_violation=bound_violation(weights, problem.max_weight),
        seconds=seconds,
        converged=bool(solution.converged),
        relative_gap=float(solution.duality_gap) / scale,
        iterations=int(solution.iterations),
        polished=bool(solution.polished),
        repaired=bool(solution.covariance_repaired),
    )


def evaluate(
    problems: Sequence[PortfolioProblem], references: Sequence[TimedReference], solve: SolveFn
) -> list[CaseResult]:
    return [
        evaluate_case(problem, reference.solution, solve)
        for problem, reference in zip(problems, references, strict=True)
    ]


def summarise(results: Sequence[CaseResult]) -> dict[str, float]:
    """The solver's metrics over the suite (names as logged to MLflow)."""
    if not results:
        raise ValueError("no validation results to summarise")
    seconds = np.array([r.seconds for r in results])
    return {
        "max_rel_objective_diff": max(r.relative_difference for r in results),
        "mean_rel_objective_diff": float(np.mean([r.relative_difference for r in results])),
        "max_sum_violation": max(r.sum_violation for r in results),
        "max_bound_violation": max(r.bound_violation for r in results),
        "share_numpy_at_least_as_good": float(np.mean([r.at_least_as_good for r in results])),
        "numpy_mean_solve_ms": float(seconds.mean() * 1e3),
        "numpy_p95_solve_ms": float(np.percentile(seconds, 95) * 1e3),
        "nonconverged_cases": float(sum(not r.converged for r in results)),
        "max_rel_duality_gap": max(r.relative_gap for r in results),
        "mean_iterations": float(np.mean([r.iterations for r in results])),
        "share_polished": float(np.mean([r.polished for r in results])),
        "repaired_covariances": float(sum(r.repaired for r in results)),
    }


def summarise_references(
    problems: Sequence[PortfolioProblem], references: Sequence[TimedReference]
) -> dict[str, float]:
    """scipy's own record on the suite: time, failures and how well it kept the constraints."""
    pairs = list(zip(problems, references, strict=True))
    return {
        "validation_cases": float(len(pairs)),
        "scipy_mean_solve_ms": float(np.mean([r.seconds for _, r in pairs]) * 1e3),
        "scipy_failures": float(sum(not r.solution.success for _, r in pairs)),
        "scipy_max_sum_violation": max(sum_violation(r.solution.weights) for _, r in pairs),
        "scipy_max_bound_violation": max(
            bound_violation(r.solution.weights, p.max_weight) for p, r in pairs
        ),
    }


def failures(metrics: Mapping[str, float]) -> list[str]:
    """Why a solver's metrics fail the tolerances (empty when they pass)."""
    reasons = []
    if metrics["max_rel_objective_diff"] > OBJECTIVE_TOLERANCE:
        reasons.append(
            f"utility differs from scipy's by {metrics['max_rel_objective_diff']:.3g} "
            f"(relative; tolerance {OBJECTIVE_TOLERANCE:g})"
        )
    for name in ("max_sum_violation", "max_bound_violation"):
        if metrics[name] > CONSTRAINT_TOLERANCE:
            reasons.append(f"{name} {metrics[name]:.3g} > {CONSTRAINT_TOLERANCE:g}")
    if metrics["nonconverged_cases"] > 0:
        reasons.append(f"{metrics['nonconverged_cases']:.0f} problems did not converge")
    return reasons
