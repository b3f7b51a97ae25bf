"""The gateway's app factory. ``create_app(settings)`` opens and always closes its clients."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway.body_limit import BodySizeLimit
from gateway.cache import PredictionCache, redis_client
from gateway.catalog import ModelCatalog
from gateway.errors import install_error_handlers
from gateway.features import OnlineFeatures
from gateway.openapi import served_openapi
from gateway.prediction_log import PredictionLog
from gateway.rollout import Rollouts
from gateway.routers import admin, health, models, predict
from gateway.service import PredictionService
from gateway.settings import GatewaySettings
from gateway.tasks.base import Context
from gateway.triton import TritonGateway
from gateway.warmup import warm_up
from trademaster.features.store import open_feature_store

log = logging.getLogger(__name__)


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = redis_client(settings.redis_url, settings.redis_timeout_s)
        triton = TritonGateway(
            settings.triton_grpc_url, settings.triton_timeout_s, settings.triton_eject_s
        )
        catalog = ModelCatalog(
            triton,
            settings.model_refresh_interval_s,
            settings.required_models,
            settings.deployment_status_path,
        )
        rollouts = Rollouts(settings.rollouts, redis)
        # Opens nothing until its first batch: a store that is down never delays the start.
        prediction_log = PredictionLog.from_settings(settings)
        service: PredictionService | None = None
        try:
            store = open_feature_store(settings.feature_store_root, settings.feast_redis)
            features = OnlineFeatures(store, settings.feast_timeout_s)
            cache = PredictionCache(redis, settings.cache_ttl_s, settings.cache_retry_after_s)
            await rollouts.reload()
            catalog.on_refresh(rollouts.reload)
            await catalog.start()
            await prediction_log.start()
            context = Context(features, triton, catalog)
            service = PredictionService(
                context,
                cache,
                rollouts,
                prediction_log,
                coalesce_batches=settings.coalesce_batches,
                max_coalesced_rows=settings.max_batch_rows,
            )
            app.state.settings = settings
            app.state.catalog = catalog
            app.state.cache = cache
            app.state.rollouts = rollouts
            app.state.service = service
            await warm_up(context, cache, settings.warm_up_timeout_s)
            # Feast, Triton's client and numpy leave a large long-lived heap; frozen, the
            # cyclic GC stops rescanning it during requests (1,000-row batches: p90 310 -> 83 ms).
            gc.collect()
            gc.freeze()
            yield
        finally:
            if service is not None:
                await service.drain()  # shadow answers still to be logged
            await prediction_log.stop()
            await catalog.stop()
            await triton.close()
            await redis.aclose()

    app = FastAPI(
        title="TradeMaster inference gateway",
        version="0.2.0",
        description=(
            "Predictions from Triton-served models with features from the Feast online store "
            "and answers cached in Redis. Prediction endpoints need an API key (X-API-Key). "
            "Every error is JSON: {error, detail} with a stable error code."
        ),
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimit,
        default_max_bytes=settings.max_body_bytes,
        limits={"/batch_predict": settings.max_batch_body_bytes},
    )
    for router in (predict.router, models.router, admin.router, health.router):
        app.include_router(router)
    app.openapi = served_openapi(app)  # type: ignore[method-assign]
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` (each worker reads the settings itself)."""
    return create_app(GatewaySettings())
