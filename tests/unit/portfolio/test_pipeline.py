"""portfolio-optimizer's validation, registration and promotion rule (real MLflow store)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fingerprints import forget_fingerprint
from trademaster import registry
from trademaster.pipeline.catalog import definition as catalog_definition
from trademaster.portfolio import pipeline as portfolio_pipeline
from trademaster.portfolio.pipeline import MODEL_NAME, decide, train_and_register
from trademaster.settings import PipelineSettings
from trademaster.training.promotion import validate_candidate

DEFINITION = catalog_definition(MODEL_NAME)
SETTINGS = PipelineSettings(environment="test")


def _passing(**overrides: float) -> dict[str, float]:
    metrics = {
        "max_rel_objective_diff": 3e-12,
        "max_sum_violation": 4e-16,
        "max_bound_violation": 0.0,
        "nonconverged_cases": 0.0,
        "numpy_mean_solve_ms": 0.8,
        "scipy_mean_solve_ms": 3.6,
        "scipy_failures": 0.0,
    }
    return {**metrics, **overrides}


def test_a_solver_that_matches_scipy_is_promoted() -> None:
    promoted, reason = decide(_passing(), SETTINGS)

    assert promoted
    assert reason == (
        "max relative utility difference 3e-12 (tolerance 1e-08), max violations sum 4e-16 "
        "bounds 0, mean solve 0.80 ms vs scipy 3.60 ms; no champion yet"
    )


def test_the_champions_numbers_are_quoted() -> None:
    metrics = _passing(
        champion_version=3.0,
        champion_max_rel_objective_diff=5e-12,
        champion_numpy_mean_solve_ms=0.7,
    )

    promoted, reason = decide(metrics, SETTINGS)

    assert promoted
    assert reason.endswith("; champion v3: difference 5e-12, mean solve 0.70 ms")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"max_rel_objective_diff": 2e-6}, "utility differs from scipy's by 2e-06"),
        ({"max_sum_violation": 1.5e-6}, "max_sum_violation 1.5e-06 > 1e-06"),
        ({"max_bound_violation": 3e-6}, "max_bound_violation 3e-06 > 1e-06"),
        ({"nonconverged_cases": 1.0}, "1 problems did not converge"),
    ],
)
def test_a_solver_off_by_more_than_the_tolerance_is_rejected(
    overrides: dict[str, float], expected: str
) -> None:
    promoted, reason = decide(_passing(**overrides), SETTINGS)

    assert not promoted
    assert reason.startswith(expected)


def test_a_rejection_says_when_scipy_itself_failed() -> None:
    promoted, reason = decide(_passing(max_rel_objective_diff=1e-4, scipy_failures=2.0), SETTINGS)

    assert not promoted
    assert "(scipy itself failed on 2 problems)" in reason


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineSettings]:
    with pytest.MonkeyPatch.context() as patch:
        # The real suite has 240 problems; 40 keep this test quick with the same code path.
        patch.setattr(portfolio_pipeline, "VALIDATION_CASES", 40)
        yield PipelineSettings(environment="test", data_dir=tmp_path_factory.mktemp("var"))


@pytest.fixture(scope="module")
def first(store: PipelineSettings) -> dict[str, Any]:
    return train_and_register(store)


def test_train_and_register_logs_the_suite_and_registers_a_challenger(
    store: PipelineSettings, first: dict[str, Any]
) -> None:
    metrics = first["metrics"]

    assert first["model_name"] == MODEL_NAME
    assert registry.version_for_alias(store, MODEL_NAME, registry.CHALLENGER) == (
        registry.RegisteredVersion(MODEL_NAME, first["version"], first["run_id"])
    )
    assert metrics["validation_cases"] == 40
    assert metrics["max_rel_objective_diff"] < 1e-9
    assert metrics["share_numpy_at_least_as_good"] == 1.0
    assert metrics["scipy_failures"] == 0
    assert metrics["numpy_mean_solve_ms"] > 0
    assert metrics["scipy_mean_solve_ms"] > 0
    assert not any(key.startswith("champion_") for key in metrics)
    assert registry.run_metrics(store, first["run_id"]) == pytest.approx(metrics)


def test_the_next_version_is_compared_with_the_promoted_champion(
    store: PipelineSettings, first: dict[str, Any]
) -> None:
    decision = validate_candidate(store, DEFINITION.name, DEFINITION.training.decide, first)
    assert decision["promoted"], decision["reason"]
    assert train_and_register(store) == first  # the same code and suite: reused
    again = validate_candidate(store, DEFINITION.name, DEFINITION.training.decide, first)
    assert again["promoted"]
    assert again["champion_version"] == again["previous_champion_version"] == first["version"]
    forget_fingerprint(store, MODEL_NAME, first["version"])

    second = train_and_register(store)

    metrics = second["metrics"]
    assert second["version"] == first["version"] + 1
    assert metrics["champion_version"] == first["version"]
    # Same problems, same scipy answers, same code: the same agreement.
    assert metrics["champion_max_rel_objective_diff"] == metrics["max_rel_objective_diff"]
    assert "champion v1" in decide(metrics, store)[1]
