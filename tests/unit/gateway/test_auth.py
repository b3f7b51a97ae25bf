from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.auth import find_key, hash_key
from gateway.errors import install_error_handlers
from gateway.routers import health
from gateway.settings import ApiKey, GatewaySettings

KEYS = [
    ApiKey(name="app", sha256=hash_key("app-key"), scopes=["predict"]),
    ApiKey(name="ops", sha256=hash_key("ops-key"), scopes=["predict", "admin", "metrics"]),
]


def test_keys_are_found_by_hash_only() -> None:
    assert find_key(KEYS, "app-key") == KEYS[0]
    assert find_key(KEYS, "ops-key") == KEYS[1]
    assert find_key(KEYS, "APP-KEY") is None
    assert find_key(KEYS, "") is None
    assert all("app-key" not in key.model_dump_json() for key in KEYS)


def test_a_stored_key_must_be_a_sha256_digest() -> None:
    with pytest.raises(ValueError, match="sha256"):
        ApiKey(name="plain", sha256="app-key")


def test_production_refuses_no_keys_and_the_placeholder() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        GatewaySettings(environment="production", api_keys=[])
    with pytest.raises(ValueError, match="placeholder"):
        GatewaySettings(
            environment="production",
            api_keys=[ApiKey(name="x", sha256=hash_key("change-me"))],
        )


def _metrics_app(require_key: bool) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(health.router)
    app.state.settings = GatewaySettings(api_keys=KEYS, metrics_require_key=require_key)
    return app


def test_metrics_can_be_protected_by_the_metrics_scope() -> None:
    with TestClient(_metrics_app(require_key=True)) as client:
        anonymous = client.get("/metrics")
        predict_only = client.get("/metrics", headers={"X-API-Key": "app-key"})
        bearer = client.get("/metrics", headers={"Authorization": "Bearer ops-key"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "unauthorized"
    assert predict_only.status_code == 403
    assert "metrics" in predict_only.json()["detail"]
    assert bearer.status_code == 200
    assert "ml_prediction_requests_total" in bearer.text


def test_metrics_are_open_by_default() -> None:
    with TestClient(_metrics_app(require_key=False)) as client:
        assert client.get("/metrics").status_code == 200
