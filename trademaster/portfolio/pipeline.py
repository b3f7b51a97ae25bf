"""Validation and registration of portfolio-optimizer, as run by the pipeline.

There are no weights to learn: a version is the solver's code. ``train_and_register`` solves
``VALIDATION_CASES`` random problems (2-60 holdings, singular and near-singular covariances,
ties, caps from 1/n to none, risk aversion 0.5-50) with the numpy solver and with scipy's
SLSQP, logs the agreement, constraint violations and solve times to an MLflow run, and
registers the solver as a pyfunc version aliased ``challenger``.

The champion is re-run on the same problems, against the same scipy answers, in the same
process (its registered solver file, loaded through its pyfunc), and its numbers are logged
as ``champion_*``: like for like even when the suite or the machine has changed since the
champion's own run, for the price of ~0.2 s.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from trademaster import portfolio, registry
from trademaster.contract.models import ModelName
from trademaster.contract.parameters import Parameter, TaskKind
from trademaster.portfolio import validation
from trademaster.portfolio.optimizer import solve_portfolio
from trademaster.portfolio.problems import (
    MAX_HOLDINGS,
    MIN_HOLDINGS,
    PortfolioProblem,
    validation_problems,
)
from trademaster.portfolio.reference import METHOD as REFERENCE_METHOD
from trademaster.portfolio.registration import load_solver, log_solver_version
from trademaster.settings import PipelineSettings
from trademaster.training import fingerprint
from trademaster.training.promotion import candidate_report

log = logging.getLogger(__name__)

MODEL_NAME = ModelName.PORTFOLIO.value
VALIDATION_CASES = 240


def champion_metrics(
    settings: PipelineSettings,
    problems: Sequence[PortfolioProblem],
    references: Sequence[validation.TimedReference],
) -> dict[str, float]:
    """The champion's solver on the candidate's problems, prefixed ``champion_``."""
    champion = registry.version_for_alias(settings, MODEL_NAME, registry.CHAMPION)
    if champion is None:
        return {}
    solver = load_solver(settings, champion)
    results = validation.evaluate(problems, references, solver.solve_portfolio)
    return {f"champion_{key}": value for key, value in validation.summarise(results).items()} | {
        "champion_version": float(champion.version)
    }


def train_and_register(settings: PipelineSettings) -> dict[str, Any]:
    """Validates the working tree's solver against scipy and registers it as ``challenger``."""
    params = {
        "validation_cases": VALIDATION_CASES,
        "validation_seed": settings.seed,
        "holdings": f"{MIN_HOLDINGS}-{MAX_HOLDINGS}",
        "reference": f"scipy.optimize.minimize({REFERENCE_METHOD})",
        "objective_tolerance": validation.OBJECTIVE_TOLERANCE,
        "constraint_tolerance": validation.CONSTRAINT_TOLERANCE,
    }
    # No data: a version is the solver's code, validated on problems drawn from the seed.
    trained_on = fingerprint.training_fingerprint({}, fingerprint.package_code(portfolio), params)
    reused = fingerprint.reused_candidate(settings, MODEL_NAME, trained_on)
    if reused is not None:
        return reused
    problems = validation_problems(VALIDATION_CASES, settings.seed)
    with validation.single_threaded_blas():
        references = validation.solve_references(problems)
        results = validation.evaluate(problems, references, solve_portfolio)
        metrics = {
            **validation.summarise(results),
            **validation.summarise_references(problems, references),
            **champion_metrics(settings, problems, references),
        }
    log.info(
        "solver vs scipy on %d problems: max relative utility difference %.3g, max violations "
        "sum %.3g bounds %.3g, mean solve %.2f ms (scipy %.2f ms)",
        len(problems),
        metrics["max_rel_objective_diff"],
        metrics["max_sum_violation"],
        metrics["max_bound_violation"],
        metrics["numpy_mean_solve_ms"],
        metrics["scipy_mean_solve_ms"],
    )
    version = log_solver_version(
        settings,
        MODEL_NAME,
        params=params,
        metrics=metrics,
        tags={
            Parameter.TASK: TaskKind.PORTFOLIO_OPTIMIZATION.value,
            fingerprint.FINGERPRINT_TAG: trained_on,
        },
    )
    return candidate_report(version, metrics)


def decide(metrics: Mapping[str, float], settings: PipelineSettings) -> tuple[bool, str]:
    """Promote only if the solver matched scipy on every problem within the tolerance, broke
    no constraint by more than 1e-6 and converged everywhere. The champion's numbers (same
    problems, same run) are quoted, not gated on: correctness is absolute here, and solve
    times on a shared machine are too noisy to block a release."""
    reasons = validation.failures(metrics)
    summary = (
        f"max relative utility difference {metrics['max_rel_objective_diff']:.3g} "
        f"(tolerance {validation.OBJECTIVE_TOLERANCE:g}), max violations sum "
        f"{metrics['max_sum_violation']:.3g} bounds {metrics['max_bound_violation']:.3g}, "
        f"mean solve {metrics['numpy_mean_solve_ms']:.2f} ms vs scipy "
        f"{metrics['scipy_mean_solve_ms']:.2f} ms"
    )
    if "champion_max_rel_objective_diff" in metrics:
        summary += (
            f"; champion v{metrics['champion_version']:.0f}: difference "
            f"{metrics['champion_max_rel_objective_diff']:.3g}, mean solve "
            f"{metrics['champion_numpy_mean_solve_ms']:.2f} ms"
        )
    else:
        summary += "; no champion yet"
    if reasons:
        scipy_note = (
            f" (scipy itself failed on {metrics['scipy_failures']:.0f} problems)"
            if metrics.get("scipy_failures", 0.0) > 0
            else ""
        )
        return False, "; ".join(reasons) + scipy_note + f" [{summary}]"
    return True, summary
