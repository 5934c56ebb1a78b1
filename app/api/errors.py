"""One error shape for the whole API: {"error": {"code", "message", "fields": [...]}}."""

import logging
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as S3ConnectionError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa_exc
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
# an API with its own body shape: (code, Chinese message, seconds to wait) -> the body of its answer
Envelope = Callable[[str, str, int], dict[str, Any]]

# While PostgreSQL or the object store cannot be reached: 503, and when to try again.
RETRY_AFTER_SECONDS = 30
UNAVAILABLE = "RETRY_LATER"


def outage(exc: BaseException | None) -> str | None:
    """"database" or "object_store" when `exc` (or an exception it was raised from) says that backing
    service cannot be reached or cannot serve now, else None (a bug or bad input: not retryable)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        # OperationalError: connection refused or lost, server shutting down, too many connections,
        # statement or lock timeout; TimeoutError: no pooled connection came free in time
        if isinstance(exc, sa_exc.OperationalError | sa_exc.TimeoutError | psycopg.OperationalError):
            return "database"
        lost = psycopg.OperationalError | psycopg.InterfaceError
        if isinstance(exc, sa_exc.DBAPIError) and (exc.connection_invalidated or isinstance(exc.orig, lost)):
            return "database"
        if isinstance(exc, S3ConnectionError | HTTPClientError):  # refused, timed out, dropped
            return "object_store"
        if isinstance(exc, ClientError):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status >= 500:  # MinIO up but unable to serve (no quorum, shutting down, SlowDown)
                return "object_store"
        exc = exc.__cause__ or exc.__context__
    return None


def install(
    app: FastAPI, page_error: PageError | None = None, envelopes: Mapping[str, Envelope] | None = None
) -> None:
    """`page_error` renders errors of portal pages (anything outside /api/) as HTML; `envelopes` (path
    prefix → body) answers an outage in the shape that API's clients read (the national interface)."""

    def is_page(request: Request) -> bool:
        machine = ("/api/", "/metrics", "/healthz", "/readyz")
        return page_error is not None and not request.url.path.startswith(machine)

    def unavailable(request: Request, what: str) -> Response:
        log.warning("backing service unavailable: %s", what, extra={"path": request.url.path})
        text = message(UNAVAILABLE)
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        for prefix, envelope in (envelopes or {}).items():
            if request.url.path.startswith(prefix):
                return JSONResponse(envelope(UNAVAILABLE, text, RETRY_AFTER_SECONDS), 503, headers=retry)
        if page_error is not None and is_page(request):
            response = page_error(request, 503, UNAVAILABLE, text)
        else:
            response = error_response(503, UNAVAILABLE)
        response.headers.update(retry)
        return response

    async def backing_service_error(request: Request, exc: Exception) -> Response:
        what = outage(exc)
        if what is None:
            raise exc  # not an outage: the catch-all below answers 500 and logs it, as before
        return unavailable(request, what)

    for kind in (sa_exc.DBAPIError, sa_exc.TimeoutError, psycopg.Error, BotoCoreError, ClientError):
        app.add_exception_handler(kind, backing_service_error)

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        if page_error is not None and is_page(request):
            response = page_error(request, exc.status, exc.code, exc.detail)
        else:
            response = error_response(exc.status, exc.code, exc.detail, exc.fields)
        if exc.status == 503:  # a service of ours says "not now" (e.g. the vehicle registry): when to retry
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

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
    async def unexpected(request: Request, exc: Exception) -> Response:
        what = outage(exc)  # an outage wrapped in another exception still answers 503, never 500
        if what is not None:
            return unavailable(request, what)
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "INTERNAL_ERROR")
