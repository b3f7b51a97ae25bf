from __future__ import annotations

import numpy as np
import pytest

from tests.unit.portfolio.support import equal_weights
from trademaster.portfolio import validation
from trademaster.portfolio.optimizer import solve_portfolio
from trademaster.portfolio.problems import validation_problems

PROBLEMS = validation_problems(30, seed=3)


@pytest.fixture(scope="module")
def references() -> list[validation.TimedReference]:
    return validation.solve_references(PROBLEMS)


def test_the_solver_passes(references: list[validation.TimedReference]) -> None:
    metrics = validation.summarise(validation.evaluate(PROBLEMS, references, solve_portfolio))

    assert validation.failures(metrics) == []
    assert metrics["share_numpy_at_least_as_good"] == 1.0
    assert metrics["max_rel_objective_diff"] < validation.OBJECTIVE_TOLERANCE
    assert metrics["numpy_mean_solve_ms"] > 0


def test_a_wrong_solver_fails_on_the_objective(
    references: list[validation.TimedReference],
) -> None:
    metrics = validation.summarise(validation.evaluate(PROBLEMS, references, equal_weights))

    reasons = validation.failures(metrics)

    assert len(reasons) == 1
    assert "utility differs from scipy's" in reasons[0]
    assert metrics["share_numpy_at_least_as_good"] < 0.5


def test_constraint_violations_and_nonconvergence_are_named() -> None:
    metrics = {
        "max_rel_objective_diff": 0.0,
        "max_sum_violation": 2e-6,
        "max_bound_violation": 5e-7,
        "nonconverged_cases": 2.0,
    }

    reasons = validation.failures(metrics)

    assert reasons == ["max_sum_violation 2e-06 > 1e-06", "2 problems did not converge"]


def test_scipy_keeps_the_constraints_on_the_suite(
    references: list[validation.TimedReference],
) -> None:
    record = validation.summarise_references(PROBLEMS, references)

    assert record["validation_cases"] == 30
    assert record["scipy_failures"] == 0
    assert record["scipy_max_sum_violation"] < 1e-9
    assert record["scipy_max_bound_violation"] < 1e-9


def test_violation_measures() -> None:
    assert validation.sum_violation(np.array([0.5, 0.6])) == pytest.approx(0.1)
    assert validation.bound_violation(np.array([-0.01, 0.5, 0.51]), 0.5) == pytest.approx(0.01)
    assert validation.bound_violation(np.array([0.25, 0.75]), 0.8) == 0.0
