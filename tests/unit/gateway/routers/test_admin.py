from __future__ import annotations

from fastapi.testclient import TestClient

from gateway.settings import Rollout
from tests.unit.gateway.fakes import rollouts as fake_rollouts
from tests.unit.gateway.routers.conftest import PREDICT_KEY, Fakes

PATH = "/admin/rollouts/risk-assessment-model"


def test_a_rollout_is_set_and_listed(admin: TestClient, fakes: Fakes) -> None:
    body: dict[str, object] = {"primary_version": 1, "canary_version": 2, "canary_weight": 0.3}
    response = admin.put(PATH, json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {**body, "shadow_version": None}
    assert fakes.rollouts.get("risk-assessment-model") == Rollout.model_validate(body)
    listed = admin.get("/admin/rollouts")
    assert listed.json() == {"risk-assessment-model": response.json()}


def test_a_misspelled_field_is_refused_and_changes_nothing(admin: TestClient, fakes: Fakes) -> None:
    fakes.rollouts = fake_rollouts({"risk-assessment-model": Rollout(primary_version=2)})
    response = admin.put(PATH, json={"primary": 1})
    assert response.status_code == 422
    assert response.json()["problems"] == [
        {"field": "primary", "message": "Extra inputs are not permitted"}
    ]
    assert fakes.rollouts.get("risk-assessment-model") == Rollout(primary_version=2)


def test_a_canary_weight_needs_a_canary_version(admin: TestClient) -> None:
    response = admin.put(PATH, json={"canary_weight": 0.2})
    assert response.status_code == 422
    assert "canary_weight above 0 needs a canary_version" in response.json()["detail"]


def test_a_version_that_is_not_loaded_is_a_conflict(admin: TestClient, fakes: Fakes) -> None:
    response = admin.put(PATH, json={"canary_version": 99, "canary_weight": 0.1})
    assert response.status_code == 409
    assert response.json()["error"] == "version_not_loaded"
    assert "99" in response.json()["detail"]
    assert "risk-assessment-model" not in fakes.rollouts.all()


def test_an_unknown_model_is_not_found(admin: TestClient) -> None:
    response = admin.put("/admin/rollouts/no-such-model", json={})
    assert response.status_code == 404
    assert response.json()["error"] == "model_not_found"


def test_a_model_not_loaded_is_503(admin: TestClient, fakes: Fakes) -> None:
    del fakes.catalog.versions["portfolio-optimizer"]
    response = admin.put("/admin/rollouts/portfolio-optimizer", json={})
    assert response.status_code == 503
    assert response.json()["error"] == "model_not_ready"


def test_admin_needs_the_admin_scope(admin: TestClient) -> None:
    client_key = {"X-API-Key": PREDICT_KEY}
    listed = admin.get("/admin/rollouts", headers=client_key)
    changed = admin.put(PATH, json={}, headers=client_key)
    assert listed.status_code == changed.status_code == 403
    assert listed.json()["error"] == "forbidden"


def test_a_wrong_method_is_405_with_allow(admin: TestClient) -> None:
    response = admin.post(PATH, json={})
    assert response.status_code == 405
    assert response.headers["Allow"] == "PUT"
