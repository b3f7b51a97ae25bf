"""The real app (``create_app``) with fake services behind the ``deps.py`` providers.

The lifespan never runs (the TestClient is not entered), so nothing is opened; each provider
is replaced through ``app.dependency_overrides``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway import deps
from gateway.app import create_app
from gateway.auth import hash_key
from gateway.errors import GatewayError, ModelNotReady
from gateway.rollout import Rollouts
from gateway.schemas import PredictRequest
from gateway.service import Outcome, Prediction
from gateway.settings import ApiKey, GatewaySettings
from gateway.triton import RepositoryEntry
from tests.unit.gateway.fakes import rollouts as fake_rollouts
from trademaster.contract.models import ModelName

PREDICT_KEY = "predict-key"
ADMIN_KEY = "admin-key"


def answer(request: PredictRequest) -> dict[str, Any]:
    """A payload with ``PredictResponse``'s shape."""
    return {
        "model_name": request.model_name,
        "model_version": 1,
        "prediction": 0.25,
        "confidence": 0.75,
        "probabilities": None,
        "feature_importance": None,
        "timestamp": "2024-01-02T03:04:05Z",
        "feature_service": None,
        "cached": False,
        "stale_features": [],
    }


@dataclass
class FakeService:
    """Answers every request, except those whose ``user_id`` is in ``failing``."""

    failing: dict[int, GatewayError] = field(default_factory=dict)
    seen: list[PredictRequest] = field(default_factory=list)
    request_ids: list[str | None] = field(default_factory=list)

    def _outcome(self, request: PredictRequest) -> Outcome:
        self.seen.append(request)
        error = self.failing.get(getattr(request, "user_id", None) or 0)
        return error if error is not None else Prediction(answer(request), cache_hit=False)

    async def predict(self, request: PredictRequest, request_id: str | None = None) -> Prediction:
        self.request_ids.append(request_id)
        outcome = self._outcome(request)
        if isinstance(outcome, GatewayError):
            raise outcome
        return outcome

    async def predict_many(
        self, requests: Sequence[PredictRequest], request_id: str | None = None
    ) -> list[Outcome]:
        self.request_ids.append(request_id)
        return [self._outcome(request) for request in requests]


@dataclass
class FakeCatalog:
    versions: dict[str, tuple[int, ...]] = field(
        default_factory=lambda: {name.value: (1, 2) for name in ModelName}
    )
    reachable: bool = True
    never_deployed: dict[str, str] = field(default_factory=dict)

    def entry(self, name: str) -> RepositoryEntry:
        if name not in self.versions:
            raise ModelNotReady(f"model '{name}' is not loaded in Triton", model_name=name)
        return RepositoryEntry(name, "READY", self.versions[name])

    def entries(self) -> list[RepositoryEntry]:
        return [self.entry(name) for name in self.versions]

    def required_ready(self) -> dict[str, bool]:
        return {name: self.reachable for name in self.versions}

    def not_deployed(self) -> dict[str, str]:
        return dict(self.never_deployed)

    def replicas(self) -> dict[str, str]:
        return {"triton:8001": "up" if self.reachable else "out: connection refused"}


class FakeCache:
    async def ping(self) -> bool:
        return True


@dataclass
class Fakes:
    service: FakeService = field(default_factory=FakeService)
    catalog: FakeCatalog = field(default_factory=FakeCatalog)
    # The real rollouts (their checks are what the admin router answers with), on a fake Redis.
    rollouts: Rollouts = field(default_factory=fake_rollouts)
    cache: FakeCache = field(default_factory=FakeCache)


def settings(**overrides: Any) -> GatewaySettings:
    keys = [
        ApiKey(name="client", sha256=hash_key(PREDICT_KEY), scopes=["predict"]),
        ApiKey(name="ops", sha256=hash_key(ADMIN_KEY), scopes=["predict", "admin", "metrics"]),
    ]
    return GatewaySettings(environment="test", api_keys=keys, **overrides)


def app_with(fakes: Fakes, gateway_settings: GatewaySettings) -> FastAPI:
    app = create_app(gateway_settings)
    app.dependency_overrides = {
        deps.get_settings: lambda: gateway_settings,
        deps.get_service: lambda: fakes.service,
        deps.get_catalog: lambda: fakes.catalog,
        deps.get_rollouts: lambda: fakes.rollouts,
        deps.get_cache: lambda: fakes.cache,
    }
    return app


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def client(fakes: Fakes) -> TestClient:
    return TestClient(
        app_with(fakes, settings(max_batch_rows=3)), headers={"X-API-Key": PREDICT_KEY}
    )


@pytest.fixture
def admin(fakes: Fakes) -> TestClient:
    return TestClient(app_with(fakes, settings()), headers={"X-API-Key": ADMIN_KEY})
