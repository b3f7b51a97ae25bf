"""Domain errors of the prediction service and their one mapping to HTTP responses.

Every error body is ``{"error": <stable code>, "detail": <human message>}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


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
        problems = [
            {
                "field": ".".join(str(part) for part in error["loc"] if part != "body"),
                "message": error["msg"],
            }
            for error in exc.errors()
        ]
        detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return JSONResponse(
            error_body("invalid_request", detail, problems=problems), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(error_body(code, exc.detail), status_code=exc.status_code)
