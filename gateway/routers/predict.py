"""POST /predict and POST /batch_predict."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gateway.deps import PredictKey, ServiceDep, SettingsDep
from gateway.errors import GatewayError, PayloadTooLarge
from gateway.schemas import (
    BatchPredictRequest,
    BatchPredictResponse,
    BatchRowError,
    BatchRowResult,
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
    # Serialised once by pydantic's Rust core; FastAPI would validate and encode it again.
    return Response(
        prediction.response.model_dump_json(),
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
    results: list[BatchRowResult | BatchRowError] = []
    for outcome in outcomes:
        if isinstance(outcome, GatewayError):
            results.append(BatchRowError(error=outcome.code, detail=outcome.detail))
        else:
            results.append(BatchRowResult(**outcome.response.model_dump()))
    batch = BatchPredictResponse(
        results=results, errors=sum(isinstance(r, BatchRowError) for r in results)
    )
    return Response(batch.model_dump_json(), media_type="application/json")
