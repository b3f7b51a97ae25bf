"""Dependencies of the routes, as ``Annotated`` aliases so signatures say what they use."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.cache import PredictionCache
from gateway.catalog import ModelCatalog
from gateway.service import PredictionService
from gateway.settings import GatewaySettings


def _settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


def _service(request: Request) -> PredictionService:
    service: PredictionService = request.app.state.service
    return service


def _catalog(request: Request) -> ModelCatalog:
    catalog: ModelCatalog = request.app.state.catalog
    return catalog


def _cache(request: Request) -> PredictionCache:
    cache: PredictionCache = request.app.state.cache
    return cache


SettingsDep = Annotated[GatewaySettings, Depends(_settings)]
ServiceDep = Annotated[PredictionService, Depends(_service)]
CatalogDep = Annotated[ModelCatalog, Depends(_catalog)]
CacheDep = Annotated[PredictionCache, Depends(_cache)]
