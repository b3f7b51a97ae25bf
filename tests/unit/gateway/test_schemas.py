from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from gateway.schemas import (
    PREDICT_REQUEST,
    BehaviorRequest,
    CanaryRollout,
    PortfolioRequest,
    PriceRequest,
    RiskRequest,
    RolloutUpdate,
    SentimentRequest,
    SteadyRollout,
    predict_request,
)
from trademaster.contract.models import ModelName

ROLLOUT: TypeAdapter[RolloutUpdate] = TypeAdapter(RolloutUpdate)


def test_defaults_to_the_risk_model() -> None:
    request = predict_request(user_id=1, symbol="SYN001")
    assert isinstance(request, RiskRequest)
    assert request.model_name is ModelName.RISK
    assert request.feature_overrides == {}
    assert request.explain is False


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"model_name": "behavioral-pattern-classifier", "user_id": 3}, BehaviorRequest),
        ({"model_name": "price-prediction-lstm", "symbol": "SYN001"}, PriceRequest),
        ({"model_name": "sentiment-analyzer", "text": "Acme beats"}, SentimentRequest),
        ({"model_name": "portfolio-optimizer", "symbols": ["A", "B"]}, PortfolioRequest),
    ],
)
def test_model_name_picks_the_body(body: dict[str, object], kind: type) -> None:
    request = PREDICT_REQUEST.validate_python(body)
    assert isinstance(request, kind)
    # What the service reads of every request, whichever the model.
    assert request.model_name == body["model_name"]
    assert request.explain is False
    assert dict(request.feature_overrides) == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": 0, "symbol": "SYN001"}, "user_id"),
        ({"user_id": -5, "symbol": "SYN001"}, "user_id"),
        ({"user_id": "1", "symbol": "SYN001"}, "user_id"),
        ({"user_id": 1.5, "symbol": "SYN001"}, "user_id"),
        ({"user_id": 1, "symbol": "syn001"}, "symbol"),
        ({"user_id": 1, "symbol": "A" * 17}, "symbol"),
        ({"symbol": "SYN001"}, "user_id"),
        ({"user_id": 1}, "symbol"),
        ({"user_id": 1, "symbol": "SYN001", "explain": 1}, "explain"),
        ({"user_id": 1, "symbol": "SYN001", "feature_overrides": {"x": float("nan")}}, "x"),
        ({"user_id": 1, "symbol": "SYN001", "feature_overrides": {"x": float("inf")}}, "x"),
        ({"user_id": 1, "symbol": "SYN001", "unexpected": True}, "unexpected"),
        ({"model_name": "behavioral-pattern-classifier", "symbol": "SYN001"}, "user_id"),
        ({"model_name": "price-prediction-lstm"}, "symbol"),
        ({"model_name": "price-prediction-lstm", "symbol": "A", "explain": False}, "explain"),
        ({"model_name": "sentiment-analyzer", "text": " \t\n"}, "blank"),
        ({"model_name": "sentiment-analyzer", "text": "x" * 1001}, "text"),
        ({"model_name": "portfolio-optimizer", "user_id": 42}, "symbols"),
        ({"model_name": "portfolio-optimizer", "symbols": ["A", "A"]}, "distinct"),
        ({"model_name": "portfolio-optimizer", "symbols": ["A"]}, "symbols"),
        ({"model_name": "../etc", "user_id": 1}, "model_name"),
    ],
)
def test_invalid_bodies_are_refused_naming_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        PREDICT_REQUEST.validate_python(body)
    assert field in str(info.value)


def test_integral_numbers_are_integers() -> None:
    request = PREDICT_REQUEST.validate_json('{"user_id": 7.0, "symbol": "SYN001"}')
    assert isinstance(request, RiskRequest)
    assert request.user_id == 7
    assert isinstance(request.user_id, int)


def test_too_many_overrides_are_refused() -> None:
    with pytest.raises(ValidationError):
        predict_request(
            user_id=1, symbol="SYN001", feature_overrides={f"f{i}": 1.0 for i in range(65)}
        )


def test_the_schema_states_what_each_model_requires() -> None:
    schema = PREDICT_REQUEST.json_schema()
    defs = schema["$defs"]
    assert len(schema["oneOf"]) == 5
    assert set(defs["RiskRequest"]["required"]) == {"user_id", "symbol"}
    assert set(defs["BehaviorRequest"]["required"]) == {"model_name", "user_id"}
    assert set(defs["PriceRequest"]["required"]) == {"model_name", "symbol"}
    assert set(defs["SentimentRequest"]["required"]) == {"model_name", "text"}
    assert set(defs["PortfolioRequest"]["required"]) == {"model_name", "symbols"}
    assert all(body["additionalProperties"] is False for body in defs.values())
    assert "explain" not in defs["PriceRequest"]["properties"]
    assert defs["PortfolioRequest"]["properties"]["symbols"]["uniqueItems"] is True


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({}, SteadyRollout),
        ({"primary_version": 2, "shadow_version": 1}, SteadyRollout),
        ({"canary_version": 2}, CanaryRollout),
        ({"canary_version": 2, "canary_weight": 0.3}, CanaryRollout),
    ],
)
def test_rollouts(body: dict[str, object], kind: type) -> None:
    assert isinstance(ROLLOUT.validate_python(body), kind)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"canary_weight": 0.3}, "needs a canary_version"),
        ({"primary": 1}, "primary"),
        ({"canary_version": 2, "canary_weight": 1.5}, "canary_weight"),
        ({"primary_version": 0}, "primary_version"),
    ],
)
def test_invalid_rollouts_are_refused(body: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        ROLLOUT.validate_python(body)
