"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import os
from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from gateway.auth import authorize
from gateway.deps import CacheDep, CatalogDep, SettingsDep
from gateway.errors import error_responses
from gateway.metrics import MULTIPROCESS_ENV
from gateway.process_metrics import gateway_collector
from gateway.schemas import ReadyStatus

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up (no dependency is checked)."""
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=ReadyStatus,
    responses={503: {"model": ReadyStatus, "description": "Not ready (same body)"}},
)
async def ready(catalog: CatalogDep, cache: CacheDep) -> JSONResponse:
    """200 when Triton answers and every deployed (required) model has a ready version that
    is not failing on every replica, else 503.

    A catalog model that was never deployed (its validation rejected every candidate) does
    not make the gateway unready: the others are served; it is listed under
    ``not_deployed`` with the reason. The cache is reported but not required: without Redis
    predictions are still served.
    """
    models = catalog.required_ready()
    status = ReadyStatus(
        ready=catalog.reachable and all(models.values()),
        triton=catalog.reachable,
        models=models,
        not_deployed=catalog.not_deployed(),
        cache=await cache.ping(),
        triton_replicas=catalog.replicas(),
    )
    return JSONResponse(status.model_dump(), status_code=200 if status.ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses=error_responses(
        {
            401: "GATEWAY_METRICS_REQUIRE_KEY set: missing or unknown API key",
            403: "GATEWAY_METRICS_REQUIRE_KEY set: API key without the metrics scope",
        }
    ),
)
async def metrics(request: Request, settings: SettingsDep) -> Response:
    """Prometheus text format; needs a key with the metrics scope if
    GATEWAY_METRICS_REQUIRE_KEY is set."""
    if settings.metrics_require_key:
        authorize(settings.api_keys, request, "metrics")
    return Response(exposition(settings.workers), media_type=CONTENT_TYPE_LATEST)


def exposition(workers: int) -> bytes:
    """This process's metrics, or every worker's when uvicorn runs several (``__main__`` then
    sets a fresh multiprocess folder before any worker starts)."""
    if workers == 1:
        return generate_latest()
    registry = CollectorRegistry()
    # prometheus_client leaves this constructor unannotated.
    collect: Callable[..., object] = multiprocess.MultiProcessCollector
    collect(registry, path=os.environ[MULTIPROCESS_ENV])
    # Multiprocess mode has no process collector: CPU and memory of the uvicorn supervisor
    # (this worker's parent) and its workers, read from /proc.
    registry.register(gateway_collector(os.getppid()))
    return generate_latest(registry)
