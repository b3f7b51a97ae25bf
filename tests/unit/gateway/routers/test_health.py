from __future__ import annotations

from fastapi.testclient import TestClient

from tests.unit.gateway.routers.conftest import ADMIN_KEY, PREDICT_KEY, Fakes, app_with, settings


def test_health_checks_nothing(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_ready_is_503_while_triton_is_unreachable(client: TestClient, fakes: Fakes) -> None:
    assert client.get("/ready").status_code == 200
    fakes.catalog.reachable = False
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["triton"] is False


def test_metrics_need_a_metrics_key_when_configured(fakes: Fakes) -> None:
    client = TestClient(app_with(fakes, settings(metrics_require_key=True)))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"X-API-Key": PREDICT_KEY}).status_code == 403
    allowed = client.get("/metrics", headers={"X-API-Key": ADMIN_KEY})
    assert allowed.status_code == 200
    assert allowed.headers["content-type"].startswith("text/plain")


def test_a_wrong_method_is_405_with_allow(client: TestClient) -> None:
    for path in ("/health", "/ready", "/metrics"):
        response = client.put(path)
        assert response.status_code == 405
        assert response.headers["Allow"] == "GET"
