from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from gateway.errors import ModelNotReady
from gateway.triton import ServedModel
from tests.unit.gateway.routers.conftest import Fakes, app_with, settings
from trademaster.contract.parameters import Parameter, TaskKind


class ServingCatalog:
    """Serves risk-assessment-model with two features; behaviour is not loaded."""

    def resolve(self, name: str) -> ServedModel:
        if name != "risk-assessment-model":
            raise ModelNotReady(f"{name} is not loaded")
        return ServedModel(
            name=name,
            version=1,
            task=TaskKind.BINARY_CLASSIFICATION,
            parameters={
                Parameter.FEATURE_NAMES: "avg_leverage,rsi_14",
                Parameter.FEATURE_MIN: "1,0",
                Parameter.FEATURE_MAX: "3,100",
            },
            input_names=("features",),
            output_names=("probability",),
            max_batch_size=1024,
        )


def _schema(catalog: object | None) -> dict[str, Any]:
    app = app_with(Fakes(), settings())
    if catalog is not None:
        app.state.catalog = catalog
    schema: dict[str, Any] = TestClient(app).get("/openapi.json").json()
    return schema


def _components(catalog: object | None) -> dict[str, Any]:
    components: dict[str, Any] = _schema(catalog)["components"]["schemas"]
    return components


def test_the_served_schema_lists_each_served_feature_and_its_range() -> None:
    components = _components(ServingCatalog())
    overrides = components["ServedRiskRequest"]["properties"]["feature_overrides"]
    assert overrides["additionalProperties"] is False
    assert "patternProperties" not in overrides
    # The training range, widened by half its span on either side (what validation accepts).
    assert overrides["properties"] == {
        "avg_leverage": {"type": "number", "minimum": 0.0, "maximum": 4.0},
        "rsi_14": {"type": "number", "minimum": -50.0, "maximum": 150.0},
    }


def test_a_model_not_served_keeps_the_static_schema() -> None:
    served = _components(ServingCatalog())["BehaviorRequest"]["properties"]["feature_overrides"]
    assert "ServedBehaviorRequest" not in _components(ServingCatalog())
    static = _components(None)["BehaviorRequest"]["properties"]["feature_overrides"]
    assert served == static
    assert "patternProperties" in static


def test_only_predict_states_the_served_overrides() -> None:
    schema = _schema(ServingCatalog())
    paths = schema["paths"]
    predict = paths["/predict"]["post"]["requestBody"]["content"]["application/json"]
    refs = [choice["$ref"] for choice in predict["schema"]["oneOf"]]
    assert "#/components/schemas/ServedRiskRequest" in refs
    assert "#/components/schemas/BehaviorRequest" in refs  # not served: static
    # A batch answers a bad override in the row's result: its rows keep the static bodies.
    static = schema["components"]["schemas"]["RiskRequest"]["properties"]["feature_overrides"]
    assert "patternProperties" in static
