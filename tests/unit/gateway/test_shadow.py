"""Shadow comparison: how far apart two answers are, and what is recorded."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from gateway.errors import InvalidRequest
from gateway.service import Prediction
from gateway.shadow import compare_shadow, disagreement
from gateway.tasks.base import Prepared
from gateway.tasks.tabular import TabularClassifier
from tests.unit.gateway.fakes import (
    catalog,
    context,
    default_features,
    default_triton,
    entry,
    linear_risk,
    request,
    risk_config,
)
from trademaster.contract.models import ModelName

RISK = ModelName.RISK


def test_numbers_differ_by_their_distance() -> None:
    assert disagreement(0.25, 0.75) == pytest.approx(0.5)
    assert disagreement(-0.1, -0.1) == 0.0


def test_labels_agree_or_not() -> None:
    assert disagreement("saver", "saver") == 0.0
    assert disagreement("saver", "trader") == 1.0


def test_weights_differ_by_their_mean_distance_over_all_symbols() -> None:
    primary = {"AAA": 0.5, "BBB": 0.5}
    shadow = {"AAA": 0.2, "BBB": 0.6, "CCC": 0.2}
    # |0.3| + |0.1| + |0.2| over 3 symbols (a missing symbol has weight 0).
    assert disagreement(primary, shadow) == pytest.approx(0.2)


def _sample(name: str, version: str) -> float:
    value = REGISTRY.get_sample_value(name, {"model_name": RISK, "shadow_version": version})
    return value or 0.0


def test_the_shadow_is_compared_per_row_and_failed_rows_are_counted() -> None:
    triton = default_triton()
    triton.entries[0] = entry(RISK, risk_config(), versions=(1, 2))
    # The shadow version answers 0.1 higher than the primary.
    triton.respond[RISK] = lambda model, inputs: linear_risk(
        [0.1, 0.05, -0.02], 0.3 if model.version == 1 else 0.4
    )(model, inputs)
    models = catalog(triton)
    ctx = context(default_features(), triton, models)
    shadow = models.entry(RISK).by_version[2]
    adapter = TabularClassifier(multiclass=False)
    rows = [request(model_name=RISK, user_id=u, symbol="AAA") for u in (1, 2)]
    prepared = asyncio.run(adapter.prepare(ctx, models.resolve(RISK), rows))
    assert all(isinstance(item, Prepared) for item in prepared)
    primary = [
        Prediction({"prediction": 0.44, "model_version": 1}, cache_hit=False),
        InvalidRequest("the primary failed this row"),
    ]
    before = (
        _sample("ml_shadow_predictions_total", "2"),
        _sample("ml_shadow_errors_total", "2"),
        _sample("ml_shadow_difference_sum", "2"),
    )

    asyncio.run(compare_shadow(ctx, shadow, adapter, prepared, primary))  # type: ignore[arg-type]

    compared = _sample("ml_shadow_predictions_total", "2") - before[0]
    errors = _sample("ml_shadow_errors_total", "2") - before[1]
    difference = _sample("ml_shadow_difference_sum", "2") - before[2]
    assert (compared, errors) == (1.0, 1.0)
    assert difference == pytest.approx(0.1, abs=1e-6)


def test_a_failing_shadow_counts_every_row_as_an_error() -> None:
    triton = default_triton()
    triton.entries[0] = entry(RISK, risk_config(), versions=(1, 3))
    triton.failing.add((RISK, 3))
    models = catalog(triton)
    ctx = context(default_features(), triton, models)
    adapter = TabularClassifier(multiclass=False)
    rows = [request(model_name=RISK, user_id=u, symbol="AAA") for u in (1, 2)]
    prepared = asyncio.run(adapter.prepare(ctx, models.resolve(RISK), rows))
    primary = [Prediction({"prediction": 0.4, "model_version": 1}, cache_hit=False)] * 2
    before = _sample("ml_shadow_errors_total", "3")

    asyncio.run(
        compare_shadow(ctx, models.entry(RISK).by_version[3], adapter, prepared, primary)  # type: ignore[arg-type]
    )

    assert _sample("ml_shadow_errors_total", "3") - before == 2.0
