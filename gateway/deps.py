"""Dependencies of the routes, as ``Annotated`` aliases so signatures say what they use.

The ``get_*`` providers read what the lifespan put on ``app.state``; tests replace them with
``app.dependency_overrides``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader

from gateway.auth import authorize
from gateway.cache import PredictionCache
from gateway.catalog import ModelCatalog
from gateway.rollout import Rollouts
from gateway.service import PredictionService
from gateway.settings import ApiKey, GatewaySettings, Scope

# Declared for the OpenAPI schema; the key itself is checked by ``authorize``.
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is kept if it is this safe to log and echo; anything else gets a fresh one.
CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


async def get_request_id(
    x_request_id: Annotated[
        str | None,
        Header(
            description="The client's id for this request (at most 128 of A-Z a-z 0-9 . _ : -); "
            "echoed in the response and kept in the prediction log. Generated if absent",
        ),
    ] = None,
) -> str:
    if x_request_id is not None and CLIENT_REQUEST_ID.fullmatch(x_request_id):
        return x_request_id
    return uuid.uuid4().hex


async def get_settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


async def get_service(request: Request) -> PredictionService:
    service: PredictionService = request.app.state.service
    return service


async def get_catalog(request: Request) -> ModelCatalog:
    catalog: ModelCatalog = request.app.state.catalog
    return catalog


async def get_cache(request: Request) -> PredictionCache:
    cache: PredictionCache = request.app.state.cache
    return cache


async def get_rollouts(request: Request) -> Rollouts:
    rollouts: Rollouts = request.app.state.rollouts
    return rollouts


def _key_with(scope: Scope) -> Callable[..., Awaitable[ApiKey]]:
    async def dependency(
        request: Request,
        settings: Annotated[GatewaySettings, Depends(get_settings)],
        _: Annotated[str | None, Depends(api_key_header)],
    ) -> ApiKey:
        return authorize(settings.api_keys, request, scope)

    return dependency


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
ServiceDep = Annotated[PredictionService, Depends(get_service)]
CatalogDep = Annotated[ModelCatalog, Depends(get_catalog)]
CacheDep = Annotated[PredictionCache, Depends(get_cache)]
RolloutsDep = Annotated[Rollouts, Depends(get_rollouts)]
RequestId = Annotated[str, Depends(get_request_id)]
PredictKey = Annotated[ApiKey, Depends(_key_with("predict"))]
AdminKey = Annotated[ApiKey, Depends(_key_with("admin"))]
MetricsKey = Annotated[ApiKey, Depends(_key_with("metrics"))]
