"""The served OpenAPI schema: the static contract, plus what only the served models know.

Which features a tabular model's ``feature_overrides`` accepts, and in which range, is in the
config of the version Triton serves, not in code. ``/openapi.json`` states them for the
version being served now, so that a request valid by the schema is accepted.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from gateway.catalog import ModelCatalog
from gateway.errors import GatewayError
from gateway.tasks.tabular import plausible_ranges
from trademaster.contract.models import ModelName

# Request bodies (schema components) whose model reads a feature vector.
TABULAR_BODIES = {"RiskRequest": ModelName.RISK, "BehaviorRequest": ModelName.BEHAVIOR}


def override_schema(catalog: ModelCatalog, model_name: str) -> dict[str, Any] | None:
    """``feature_overrides`` of the served version of ``model_name``: its feature names,
    each within the range validation accepts; None when no version is served."""
    try:
        model = catalog.resolve(model_name)
    except GatewayError:
        return None
    properties = {
        name: {"type": "number", "minimum": lo, "maximum": hi}
        for name, (lo, hi) in plausible_ranges(model).items()
    }
    return {"properties": properties, "additionalProperties": False}


def served_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """A replacement for ``app.openapi``: the static schema (built once by FastAPI) with the
    served models' feature overrides in ``POST /predict``'s bodies.

    Only there: ``/predict`` refuses a bad override (422), while ``/batch_predict`` answers
    it in that row's result, so its rows keep the static bodies.
    """
    static = app.openapi

    def openapi() -> dict[str, Any]:
        schema = copy.deepcopy(static())
        catalog: ModelCatalog | None = getattr(app.state, "catalog", None)
        if catalog is None:
            return schema
        components = schema.get("components", {}).get("schemas", {})
        body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
        for choice in body["schema"].get("oneOf", []):
            component = choice.get("$ref", "").rpartition("/")[2]
            overrides = (
                override_schema(catalog, TABULAR_BODIES[component])
                if component in TABULAR_BODIES and component in components
                else None
            )
            if overrides is None:
                continue
            served = copy.deepcopy(components[component])
            field = served["properties"]["feature_overrides"]
            field.pop("patternProperties", None)
            field.update(overrides)
            components[f"Served{component}"] = served
            choice["$ref"] = f"#/components/schemas/Served{component}"
        return schema

    return openapi
