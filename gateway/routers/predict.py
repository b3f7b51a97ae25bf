"""POST /predict."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gateway.deps import ServiceDep
from gateway.schemas import ErrorResponse, PredictRequest, PredictResponse

router = APIRouter(tags=["predictions"])

ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "Unknown model, user_id or symbol"},
    413: {"model": ErrorResponse, "description": "Request body too large"},
    422: {"model": ErrorResponse, "description": "Invalid body or feature overrides"},
    503: {"model": ErrorResponse, "description": "Model not loaded, Triton or Feast down"},
}


@router.post("/predict", response_model=PredictResponse, responses=ERRORS)
async def predict(body: PredictRequest, service: ServiceDep, response: Response) -> PredictResponse:
    """Predicts for one (user, symbol) with features read from the Feast online store.

    Identical requests within the cache TTL are answered from Redis (header ``X-Cache: hit``).
    """
    prediction = await service.predict(body)
    response.headers["X-Cache"] = "hit" if prediction.cache_hit else "miss"
    return prediction.response
