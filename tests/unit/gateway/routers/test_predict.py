from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from gateway.errors import EntityNotFound, ModelNotReady
from tests.unit.gateway.routers.conftest import Fakes

RISK = {"user_id": 1, "symbol": "SYN001"}


def test_predict_answers_the_service_prediction(client: TestClient, fakes: Fakes) -> None:
    response = client.post("/predict", json=RISK)
    assert response.status_code == 200, response.text
    assert response.headers["X-Cache"] == "miss"
    assert response.json()["model_name"] == "risk-assessment-model"
    (request,) = fakes.service.seen
    assert request.model_name == "risk-assessment-model"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (EntityNotFound("unknown user_id 1"), 404, "entity_not_found"),
        (ModelNotReady("not loaded", model_name="risk-assessment-model"), 503, "model_not_ready"),
    ],
)
def test_service_errors_are_json(
    client: TestClient, fakes: Fakes, error: Exception, status: int, code: str
) -> None:
    fakes.service.failing[1] = error  # type: ignore[assignment]
    response = client.post("/predict", json=RISK)
    assert response.status_code == status
    assert response.json()["error"] == code


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"model_name": "portfolio-optimizer", "user_id": 42}, "symbols"),
        ({"model_name": "price-prediction-lstm"}, "symbol"),
        ({"model_name": "sentiment-analyzer"}, "text"),
        ({"model_name": "behavioral-pattern-classifier"}, "user_id"),
        ({"symbol": "SYN001"}, "user_id"),
    ],
)
def test_a_field_the_model_needs_is_required(
    client: TestClient, fakes: Fakes, body: dict[str, object], missing: str
) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert {"field": missing, "message": "Field required"} in problems
    assert not fakes.service.seen


def test_an_unknown_field_is_refused_by_name(client: TestClient) -> None:
    response = client.post("/predict", json={**RISK, "explian": True})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert response.json()["problems"] == [
        {"field": "explian", "message": "Extra inputs are not permitted"}
    ]


def test_an_unknown_model_is_not_found(client: TestClient) -> None:
    response = client.post("/predict", json={**RISK, "model_name": "no-such-model"})
    assert response.status_code == 404
    assert response.json()["error"] == "model_not_found"
    assert "no-such-model" in response.json()["detail"]


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe{}", b""])
def test_an_unparseable_body_is_a_json_422(client: TestClient, body: bytes) -> None:
    for path in ("/predict", "/batch_predict"):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"] == "invalid_request"


def test_a_key_is_needed(client: TestClient) -> None:
    anonymous = client.post("/predict", json=RISK, headers={"X-API-Key": ""})
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "ApiKey"


def test_batch_answers_each_row_with_its_own_error(client: TestClient, fakes: Fakes) -> None:
    fakes.service.failing[2] = EntityNotFound("unknown user_id 2")
    rows = [
        RISK,
        {"user_id": 2, "symbol": "SYN001"},
        {"model_name": "sentiment-analyzer", "text": "up"},
    ]
    response = client.post("/batch_predict", json={"rows": rows})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [result["ok"] for result in results] == [True, False, True]
    assert results[1]["error"] == "entity_not_found"
    assert response.json()["errors"] == 1


def test_batch_refuses_an_invalid_row_naming_it(client: TestClient) -> None:
    rows = [RISK, {"model_name": "portfolio-optimizer", "symbols": ["A"]}]
    response = client.post("/batch_predict", json={"rows": rows})
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "rows.1.symbols"


def test_batch_with_an_unknown_model_is_not_found(client: TestClient) -> None:
    response = client.post("/batch_predict", json={"rows": [RISK, {"model_name": "nope"}]})
    assert response.status_code == 404
    assert "rows.1.model_name" in response.json()["detail"]


def test_batch_over_the_row_limit_is_413(client: TestClient) -> None:
    response = client.post("/batch_predict", json={"rows": [RISK] * 4})  # the limit is 3
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_an_oversized_body_is_413(client: TestClient) -> None:
    big = {"model_name": "sentiment-analyzer", "text": "x" * 70_000}
    response = client.post("/predict", json=big)
    assert response.status_code == 413


@pytest.mark.parametrize(("method", "path"), [("GET", "/predict"), ("DELETE", "/batch_predict")])
def test_a_wrong_method_is_405_with_allow(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json()["error"] == "method_not_allowed"


def test_a_valid_client_request_id_is_used_and_echoed(client: TestClient, fakes: Fakes) -> None:
    response = client.post("/predict", json=RISK, headers={"X-Request-ID": "ord-42:a_b.c"})
    assert response.headers["X-Request-ID"] == "ord-42:a_b.c"
    assert fakes.service.request_ids == ["ord-42:a_b.c"]


@pytest.mark.parametrize(
    "sent", [None, "", "has space", "x" * 129, "semi;colon", "ünï".encode(), "a\x00b"]
)
def test_a_missing_or_unsafe_request_id_is_replaced(
    client: TestClient, fakes: Fakes, sent: str | bytes | None
) -> None:
    raw = sent.encode() if isinstance(sent, str) else sent
    headers = {} if raw is None else {b"X-Request-ID": raw}
    for path, body in (("/predict", RISK), ("/batch_predict", {"rows": [RISK]})):
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 200, response.text
        generated = response.headers["X-Request-ID"]
        assert len(generated) == 32
        assert int(generated, 16) >= 0
    assert len(set(fakes.service.request_ids)) == 2  # a new one per request


def test_batch_echoes_the_request_id(client: TestClient, fakes: Fakes) -> None:
    response = client.post(
        "/batch_predict", json={"rows": [RISK, RISK]}, headers={"X-Request-ID": "x" * 128}
    )
    assert response.headers["X-Request-ID"] == "x" * 128
    assert fakes.service.request_ids == ["x" * 128]
