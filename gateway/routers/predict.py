"""POST /predict and POST /batch_predict."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Response

from gateway.deps import PredictKey, ServiceDep, SettingsDep
from gateway.errors import GatewayError, PayloadTooLarge
from gateway.schemas import (
    BatchPredictRequest,
    BatchPredictResponse,
    ErrorResponse,
    PredictRequest,
    PredictResponse,
)

router = APIRouter(tags=["predictions"])

ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Missing or unknown API key"},
    403: {"model": ErrorResponse, "description": "API key without the predict scope"},
    404: {"model": ErrorResponse, "description": "Unknown model, user_id or symbol"},
    413: {"model": ErrorResponse, "description": "Request body (or batch) too large"},
    422: {"model": ErrorResponse, "description": "Invalid body, missing field, bad override"},
    503: {"model": ErrorResponse, "description": "Model not loaded; Triton or Feast down"},
}


@router.post("/predict", response_model=PredictResponse, responses=ERRORS)
async def predict(body: PredictRequest, service: ServiceDep, _: PredictKey) -> Response:
    """One prediction; features come from the Feast online store.

    Identical effective inputs within the cache TTL are answered from Redis
    (header ``X-Cache: hit``).
    """
    prediction = await service.predict(body)
    # The payload already has PredictResponse's shape: encode it once, skip re-validation.
    return Response(
        orjson.dumps(prediction.payload),
        media_type="application/json",
        headers={"X-Cache": "hit" if prediction.cache_hit else "miss"},
    )


@router.post("/batch_predict", response_model=BatchPredictResponse, responses=ERRORS)
async def batch_predict(
    body: BatchPredictRequest, service: ServiceDep, settings: SettingsDep, _: PredictKey
) -> Response:
    """Many predictions in one call: per model, one Feast read, one cache round trip and one
    Triton call. A row that fails (unknown entity) carries its own error; the others succeed.
    """
    if len(body.rows) > settings.max_batch_rows:
        raise PayloadTooLarge(f"{len(body.rows)} rows; at most {settings.max_batch_rows} per batch")
    outcomes = await service.predict_many(body.rows)
    results = [
        {"ok": False, "error": outcome.code, "detail": outcome.detail}
        if isinstance(outcome, GatewayError)
        else {**outcome.payload, "ok": True}
        for outcome in outcomes
    ]
    errors = sum(isinstance(outcome, GatewayError) for outcome in outcomes)
    return Response(
        orjson.dumps({"results": results, "errors": errors}), media_type="application/json"
    )
