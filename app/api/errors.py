"""One error shape for the whole API: {"error": {"code", "message", "fields": [...]}}."""

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from app.domain.errors import AppError, FieldError, message
from app.domain.record import field_errors

log = logging.getLogger("app.api")


class FieldErrorOut(BaseModel):
    field: str = Field(description="出错字段路径，如 vehicle.vin、items.0.fee")
    code: str = Field(description="机器可读错误码")
    message: str = Field(description="中文说明")


class ErrorDetail(BaseModel):
    code: str = Field(description="机器可读错误码，见 docs/api.md 错误码表")
    message: str = Field(description="中文说明")
    fields: list[FieldErrorOut] = Field(default_factory=list, description="逐字段错误")


class ErrorBody(BaseModel):
    error: ErrorDetail


def error_response(
    status: int, code: str, detail: str | None = None, fields: list[FieldError] | None = None
) -> JSONResponse:
    body = {
        "error": {
            "code": code,
            "message": detail or message(code),
            "fields": [f.as_dict() for f in fields or []],
        }
    }
    return JSONResponse(body, status_code=status)


_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE", 401: "AUTH_REQUIRED"}

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {
        "model": ErrorBody,
        "description": "未认证：AUTH_REQUIRED / TOKEN_INVALID / TOKEN_EXPIRED / CREDENTIAL_REVOKED",
    },
    422: {"model": ErrorBody, "description": "校验未通过：VALIDATION_FAILED，逐字段错误码见 fields"},
}


PageError = Callable[[Request, int, str, str], Response]


def install(app: FastAPI, page_error: PageError | None = None) -> None:
    """`page_error` renders errors of portal pages (anything outside /api/) as HTML."""

    def is_page(request: Request) -> bool:
        machine = ("/api/", "/metrics", "/healthz", "/readyz")
        return page_error is not None and not request.url.path.startswith(machine)

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        if page_error is not None and is_page(request):
            return page_error(request, exc.status, exc.code, exc.detail)
        return error_response(exc.status, exc.code, exc.detail, exc.fields)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if page_error is not None and is_page(request):
            return page_error(request, 422, "VALIDATION_FAILED", "请求参数不正确，请检查后重试")
        raw = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in raw):
            return error_response(400, "MALFORMED_JSON")
        # drop FastAPI's leading "body"/"query"/"path" so paths read like the documented fields
        trimmed = [{**e, "loc": tuple(e.get("loc", ()))[1:] or ("body",)} for e in raw]
        return error_response(422, "VALIDATION_FAILED", fields=field_errors(trimmed))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "INTERNAL_ERROR" if exc.status_code >= 500 else "FORBIDDEN")
        if page_error is not None and is_page(request):
            return page_error(request, exc.status_code, code, message(code))
        return error_response(exc.status_code, code)

    @app.exception_handler(DataError)
    async def data_error(_: Request, exc: DataError) -> JSONResponse:
        # input the validators let through but PostgreSQL refuses (NUL in a credential, say)
        log.warning("database refused input: %s", exc.orig)
        return error_response(422, "VALIDATION_FAILED", fields=[FieldError.of("body", "TEXT_INVALID")])

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "INTERNAL_ERROR")
