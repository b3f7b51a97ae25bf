"""The prediction service: knows models, features, cache and Triton; knows nothing of HTTP."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from gateway import metrics
from gateway.cache import PredictionCache, cache_key
from gateway.catalog import ModelCatalog
from gateway.errors import GatewayError, InferenceFailed, InvalidFeatures
from gateway.features import OnlineFeatures
from gateway.schemas import PredictRequest, PredictResponse
from gateway.triton import ServedModel, TritonGateway


@dataclass(frozen=True)
class Prediction:
    response: PredictResponse
    cache_hit: bool


class PredictionService:
    def __init__(
        self,
        catalog: ModelCatalog,
        features: OnlineFeatures,
        triton: TritonGateway,
        cache: PredictionCache,
    ) -> None:
        self._catalog = catalog
        self._features = features
        self._triton = triton
        self._cache = cache

    async def predict(self, request: PredictRequest) -> Prediction:
        started = time.perf_counter()
        # Only names Triton knows become label values: client input must not grow the series.
        model_label = request.model_name if self._catalog.knows(request.model_name) else "unknown"
        metrics.PREDICTION_REQUESTS.labels(model_label).inc()
        try:
            prediction = await self._predict(request)
        except GatewayError as exc:
            metrics.PREDICTION_ERRORS.labels(model_label, exc.code).inc()
            raise
        metrics.PREDICTION_DURATION.labels(model_label).observe(time.perf_counter() - started)
        return prediction

    async def _predict(self, request: PredictRequest) -> Prediction:
        model = self._catalog.resolve(request.model_name)
        try:
            return await self._predict_with(model, request)
        except InferenceFailed:
            # The version may just have been replaced (promotion): re-read and retry once.
            await self._catalog.refresh()
            current = self._catalog.resolve(request.model_name)
            if current.version == model.version:
                raise
            return await self._predict_with(current, request)

    async def _predict_with(self, model: ServedModel, request: PredictRequest) -> Prediction:
        unknown = sorted(set(request.feature_overrides) - set(model.feature_names))
        if unknown:
            raise InvalidFeatures(
                f"unknown feature(s) in feature_overrides: {', '.join(unknown)}; "
                f"{model.name} uses: {', '.join(model.feature_names)}"
            )
        entities = {"user_id": request.user_id, "symbol": request.symbol}
        key = cache_key(
            model.name, model.version, model.feature_service, entities, request.feature_overrides
        )
        cached = await self._cache.get(key)
        metrics.CACHE_LOOKUPS.labels(model.name, "hit" if cached else "miss").inc()
        if cached is not None:
            return Prediction(PredictResponse(**{**cached, "cached": True}), cache_hit=True)

        row = await self._features.read(model.feature_service, entities)
        values = {**row.values, **request.feature_overrides}
        missing = [name for name in model.feature_names if values.get(name) is None]
        if missing:
            raise InvalidFeatures(
                f"features without a value: {', '.join(missing)}; pass them in feature_overrides"
            )
        vector = np.array([[values[name] for name in model.feature_names]], dtype=np.float32)
        probability = float((await self._triton.infer(model, vector)).reshape(-1)[0])
        response = self._response(model, probability, list(row.stale_views))
        await self._cache.set(key, response.model_dump(mode="json", exclude={"cached"}))
        return Prediction(response, cache_hit=False)

    @staticmethod
    def _response(model: ServedModel, probability: float, stale: list[str]) -> PredictResponse:
        payload: dict[str, Any] = {
            "model_name": model.name,
            "model_version": model.version,
            "prediction": probability,
            "confidence": max(probability, 1.0 - probability),
            "timestamp": datetime.now(UTC),
            "feature_service": model.feature_service,
            "cached": False,
            "stale_features": stale,
        }
        return PredictResponse(**payload)
