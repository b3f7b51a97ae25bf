"""Domain errors of the prediction service and their one mapping to HTTP responses.

Every error body is ``{"error": <stable code>, "detail": <human message>}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.schemas import PREDICT_BODY_ERROR, UNION_TAGS, ErrorResponse
from trademaster.contract.models import ModelName


class GatewayError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context


class Unauthorized(GatewayError):
    status_code = 401
    code = "unauthorized"


class Forbidden(GatewayError):
    status_code = 403
    code = "forbidden"


class ModelNotFound(GatewayError):
    status_code = 404
    code = "model_not_found"


class EntityNotFound(GatewayError):
    status_code = 404
    code = "entity_not_found"


class InvalidRequest(GatewayError):
    status_code = 422
    code = "invalid_request"


class VersionNotLoaded(GatewayError):
    """A rollout names a version Triton does not serve now (the request conflicts with the
    current state of the model, not with the schema)."""

    status_code = 409
    code = "version_not_loaded"


class PayloadTooLarge(GatewayError):
    status_code = 413
    code = "payload_too_large"


class InvalidFeatures(GatewayError):
    status_code = 422
    code = "invalid_features"


class ModelNotReady(GatewayError):
    status_code = 503
    code = "model_not_ready"


class FeaturesUnavailable(GatewayError):
    status_code = 503
    code = "features_unavailable"


class InferenceFailed(GatewayError):
    status_code = 503
    code = "inference_unavailable"


def error_body(code: str, detail: Any, **context: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **context}


def field_path(location: Sequence[int | str]) -> str:
    """``rows.3.user_id`` from pydantic's location, without the ``body`` prefix and the
    union tags (``risk-assessment-model``) pydantic inserts."""
    return ".".join(
        str(part) for part in location[1:] if not (isinstance(part, str) and part in UNION_TAGS)
    )


def unknown_model(errors: Sequence[Mapping[str, Any]]) -> ModelNotFound | None:
    """A ``model_name`` outside the schema's models is answered as an unknown model (404),
    as it was before the schema listed them, naming where it was found."""
    for error in errors:
        location = tuple(error["loc"])
        if error["type"] == PREDICT_BODY_ERROR and location[:1] == ("body",):
            name = error["input"].get("model_name") if isinstance(error["input"], dict) else None
            where = field_path((*location, "model_name"))
        elif error["type"] == "enum" and location == ("path", "model_name"):
            name, where = error["input"], "model_name"
        else:
            continue
        if isinstance(name, str):
            known = ", ".join(ModelName)
            return ModelNotFound(f"{where}: unknown model '{name}' (known models: {known})")
    return None


def problem(error: Mapping[str, Any]) -> dict[str, str]:
    """One entry of an invalid_request's ``problems``: the field and what is wrong."""
    if error["type"] == "json_invalid":  # its location is a character offset
        reason = error.get("ctx", {}).get("error", "")
        return {"field": "", "message": f"the body is not valid JSON ({reason})"}
    return {"field": field_path(error["loc"]), "message": error["msg"]}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        headers = {"WWW-Authenticate": "ApiKey"} if exc.status_code == 401 else None
        return JSONResponse(
            error_body(exc.code, exc.detail, **exc.context),
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        not_found = unknown_model(exc.errors())
        if not_found is not None:
            return await _gateway_error(request, not_found)
        problems = [problem(error) for error in exc.errors()]
        detail = "; ".join(
            f"{p['field']}: {p['message']}" if p["field"] else p["message"] for p in problems
        )
        return JSONResponse(
            error_body("invalid_request", detail, problems=problems), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's one 400: a body it cannot decode (e.g. not UTF-8). Answered like a
            # body that is not JSON: 422 invalid_request.
            problems = [{"field": "", "message": "the body is not valid JSON (UTF-8)"}]
            return JSONResponse(
                error_body("invalid_request", problems[0]["message"], problems=problems),
                status_code=422,
            )
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        # 405 carries Allow (RFC 9110): the methods the resource supports.
        return JSONResponse(
            error_body(code, exc.detail), status_code=exc.status_code, headers=exc.headers
        )


def error_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """An operation's ``responses=``: each error status it can answer, with the error body."""
    return {
        status: {"model": ErrorResponse, "description": description}
        for status, description in descriptions.items()
    }
