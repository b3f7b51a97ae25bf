from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.schemas import PredictRequest


def test_defaults_to_the_risk_model() -> None:
    request = PredictRequest(user_id=1, symbol="SYN001")
    assert request.model_name == "risk-assessment-model"
    assert request.feature_overrides == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": 0, "symbol": "SYN001"}, "user_id"),
        ({"user_id": -5, "symbol": "SYN001"}, "user_id"),
        ({"user_id": 1, "symbol": "syn001"}, "symbol"),
        ({"user_id": 1, "symbol": "A" * 17}, "symbol"),
        ({"user_id": 1, "symbol": "SYN001", "model_name": "../etc"}, "model_name"),
        ({"user_id": 1, "symbol": "SYN001", "feature_overrides": {"x": float("nan")}}, "x"),
        ({"user_id": 1, "symbol": "SYN001", "feature_overrides": {"x": float("inf")}}, "x"),
        ({"user_id": 1, "symbol": "SYN001", "unexpected": True}, "unexpected"),
    ],
)
def test_invalid_bodies_are_refused_naming_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        PredictRequest.model_validate(body)
    assert field in str(info.value)


def test_too_many_overrides_are_refused() -> None:
    with pytest.raises(ValidationError):
        PredictRequest(
            user_id=1, symbol="SYN001", feature_overrides={f"f{i}": 1.0 for i in range(65)}
        )
