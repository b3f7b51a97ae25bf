from __future__ import annotations

from fastapi.testclient import TestClient

from tests.unit.gateway.routers.conftest import Fakes


def test_lists_served_then_never_deployed_models(client: TestClient, fakes: Fakes) -> None:
    fakes.catalog.versions = {"risk-assessment-model": (1, 2)}
    fakes.catalog.never_deployed = {"portfolio-optimizer": "no champion"}
    response = client.get("/models")
    assert response.status_code == 200
    risk, portfolio = response.json()
    assert risk["name"] == "risk-assessment-model"
    assert risk["versions"] == [1, 2]
    assert portfolio == {
        "name": "portfolio-optimizer",
        "ready": False,
        "state": "NOT_DEPLOYED",
        "version": None,
        "versions": [],
        "task": None,
        "feature_service": None,
        "features": [],
        "reason": "no champion",
    }


def test_a_wrong_method_is_405_with_allow(client: TestClient) -> None:
    response = client.post("/models")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
