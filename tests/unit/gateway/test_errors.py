from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.body_limit import BodySizeLimit
from gateway.errors import (
    EntityNotFound,
    FeaturesUnavailable,
    InferenceFailed,
    InvalidFeatures,
    ModelNotFound,
    ModelNotReady,
    field_path,
    install_error_handlers,
)


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, default_max_bytes=100, limits={"/big": 1000})
    errors = {
        "model": ModelNotFound("unknown model 'x'"),
        "entity": EntityNotFound("unknown user_id 5"),
        "features": InvalidFeatures("bad"),
        "ready": ModelNotReady("not loaded"),
        "feast": FeaturesUnavailable("down"),
        "triton": InferenceFailed("down"),
    }

    @app.get("/raise/{kind}")
    async def _raise(kind: str) -> None:
        raise errors[kind]

    @app.post("/echo")
    async def _echo(body: dict[str, int]) -> dict[str, int]:
        return body

    @app.post("/big")
    async def _big(body: dict[str, int]) -> dict[str, int]:
        return body

    return app


def test_domain_errors_map_to_status_and_stable_codes() -> None:
    expected = {
        "model": (404, "model_not_found"),
        "entity": (404, "entity_not_found"),
        "features": (422, "invalid_features"),
        "ready": (503, "model_not_ready"),
        "feast": (503, "features_unavailable"),
        "triton": (503, "inference_unavailable"),
    }
    with TestClient(_app()) as client:
        for kind, (status, code) in expected.items():
            response = client.get(f"/raise/{kind}")
            assert response.status_code == status
            assert response.json()["error"] == code
            assert response.json()["detail"]


def test_unknown_route_and_oversized_body_are_json() -> None:
    with TestClient(_app()) as client:
        missing = client.get("/nope")
        big = client.post("/echo", content=b"{" + b" " * 200 + b"}")
        streamed = client.post(
            "/echo", content=iter([b'{"a": 1', b" " * 200, b"}"])
        )  # no content-length: counted while read
        small = client.post("/echo", json={"a": 1})
        per_path = client.post("/big", content=b"{" + b" " * 200 + b"}")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    assert big.status_code == 413
    assert big.json()["error"] == "payload_too_large"
    assert streamed.status_code == 413
    assert small.json() == {"a": 1}
    assert per_path.status_code != 413  # within /big's own, larger limit


def test_a_wrong_method_is_405_naming_the_allowed_ones() -> None:
    with TestClient(_app()) as client:
        response = client.delete("/echo")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json()["error"] == "method_not_allowed"


def test_a_body_fastapi_cannot_read_is_422_not_400() -> None:
    app = _app()

    @app.get("/broken")
    async def _broken() -> None:
        raise StarletteHTTPException(400, "There was an error parsing the body")

    with TestClient(app) as client:
        response = client.get("/broken")
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_invalid_json_is_422_without_a_character_offset_as_field() -> None:
    with TestClient(_app()) as client:
        response = client.post(
            "/echo", content=b"{nope", headers={"content-type": "application/json"}
        )
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == ""
    assert "not valid JSON" in response.json()["detail"]


def test_field_paths_leave_out_the_body_and_union_tags() -> None:
    assert field_path(("body", "rows", 3, "portfolio-optimizer", "symbols")) == "rows.3.symbols"
    assert field_path(("body", "steady", "canary_weight")) == "canary_weight"
