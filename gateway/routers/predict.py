"""POST /predict and POST /batch_predict."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Response

from gateway.deps import REQUEST_ID_HEADER, PredictKey, RequestId, ServiceDep, SettingsDep
from gateway.errors import GatewayError, PayloadTooLarge, error_responses
from gateway.schemas import (
    BatchPredictRequest,
    BatchPredictResponse,
    PredictRequest,
    PredictResponse,
)

router = APIRouter(tags=["predictions"])

AUTH = {
    401: "Missing or unknown API key (unauthorized)",
    403: "API key without the predict scope (forbidden)",
}
INVALID = (
    "Invalid body: not JSON, unknown field, a field the model needs is missing "
    "(invalid_request); an override outside the model's features or range, max_weight "
    "below 1/len(symbols), stale price windows of a portfolio"
)


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=error_responses(
        {
            **AUTH,
            404: "Unknown model (model_not_found), user_id or symbol (entity_not_found)",
            413: "Request body too large (payload_too_large)",
            422: INVALID,
            503: "Model not loaded or not deployed (model_not_ready); Triton or Feast down",
        }
    ),
)
async def predict(
    body: PredictRequest, service: ServiceDep, request_id: RequestId, _: PredictKey
) -> Response:
    """One prediction; features come from the Feast online store.

    Identical effective inputs within the cache TTL are answered from Redis
    (header ``X-Cache: hit``). ``X-Request-ID`` names the answer in the prediction log.
    """
    prediction = await service.predict(body, request_id)
    # The payload already has PredictResponse's shape: encode it once, skip re-validation.
    return Response(
        orjson.dumps(prediction.payload),
        media_type="application/json",
        headers={
            "X-Cache": "hit" if prediction.cache_hit else "miss",
            REQUEST_ID_HEADER: request_id,
        },
    )


@router.post(
    "/batch_predict",
    response_model=BatchPredictResponse,
    responses=error_responses(
        {
            **AUTH,
            404: "A row names an unknown model (model_not_found)",
            413: "Request body too large, or more rows than GATEWAY_MAX_BATCH_ROWS",
            422: "Invalid body (invalid_request): every row must be valid",
        }
    ),
)
async def batch_predict(
    body: BatchPredictRequest,
    service: ServiceDep,
    settings: SettingsDep,
    request_id: RequestId,
    _: PredictKey,
) -> Response:
    """Many predictions in one call: per model, one Feast read, one cache round trip and one
    Triton call. A row that fails (unknown entity, a dependency down) carries its own error;
    the others succeed. Row ``i`` is ``"{X-Request-ID}:{i}"`` in the prediction log.
    """
    if len(body.rows) > settings.max_batch_rows:
        raise PayloadTooLarge(f"{len(body.rows)} rows; at most {settings.max_batch_rows} per batch")
    outcomes = await service.predict_many(body.rows, request_id)
    results = [
        {"ok": False, "error": outcome.code, "detail": outcome.detail}
        if isinstance(outcome, GatewayError)
        else {**outcome.payload, "ok": True}
        for outcome in outcomes
    ]
    errors = sum(isinstance(outcome, GatewayError) for outcome in outcomes)
    return Response(
        orjson.dumps({"results": results, "errors": errors}),
        media_type="application/json",
        headers={REQUEST_ID_HEADER: request_id},
    )
