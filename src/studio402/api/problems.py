"""Errors -> HTTP: RFC 9457 problem+json with a stable `code`. The only place that knows status codes."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from studio402.errors import (
    AccessDenied,
    AuthError,
    BackendError,
    ChainError,
    ConfigError,
    ConflictError,
    InputError,
    MalformedPayment,
    NotFound,
    PayloadTooLarge,
    PaymentConflict,
    PaymentError,
    PaymentRejected,
    PaymentRequired,
    RateLimited,
    SettlementPending,
    StorageError,
    Studio402Error,
    TokenError,
    UnknownRoute,
    ValidationFailed,
    field_errors_from_pydantic,
)
from studio402.payments import x402
from studio402.redact import Scrubber

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:studio402:problem:"
_URLS_ONLY = Scrubber()  # an app without configured secrets still never echoes URL credentials

_STATUS: dict[type[Studio402Error], int] = {
    PayloadTooLarge: 413,
    UnknownRoute: 404,
    InputError: 400,
    NotFound: 404,
    AccessDenied: 403,
    TokenError: 401,
    AuthError: 402,
    PaymentRequired: 402,
    MalformedPayment: 400,
    PaymentRejected: 402,
    PaymentConflict: 409,
    SettlementPending: 202,
    PaymentError: 402,
    ConflictError: 409,
    RateLimited: 429,
    ChainError: 502,
    BackendError: 502,
    StorageError: 503,  # the blob store is down: try again later, nothing was charged
    ConfigError: 500,
}


def status_for(exc: Studio402Error) -> int:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def problem(
    status: int, code: str, title: str, detail: str, *, instance: str | None = None, **members: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in members.items() if v is not None})
    return body


def problem_response(
    body: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    status: int | None = None,
    scrubber: Scrubber = _URLS_ONLY,
) -> JSONResponse:
    """The last line of defence for secrets: every string in the document is scrubbed of URL credentials
    and queries and of the configured secret values, whatever the code that raised put in it."""
    return JSONResponse(
        scrubber.scrub_value(body),
        status_code=status or int(body["status"]),
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def scrubber_of(request: Request) -> Scrubber:
    scrubber = getattr(request.app.state, "scrubber", None)
    return scrubber if isinstance(scrubber, Scrubber) else _URLS_ONLY


def error_response(
    exc: Studio402Error, instance: str | None, *, scrubber: Scrubber = _URLS_ONLY
) -> JSONResponse:
    status = status_for(exc)
    members: dict[str, Any] = dict(exc.extra)
    if isinstance(exc, ValidationFailed):
        members["errors"] = [e.as_dict() for e in exc.errors]
    headers: dict[str, str] = {}
    if isinstance(exc, PaymentError | AuthError) and status == 402:
        headers["Cache-Control"] = "no-store"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, PaymentError | AuthError) and exc.challenge is not None:
        headers[x402.PAYMENT_REQUIRED] = x402.encode(exc.challenge)
    if isinstance(exc, PaymentError):
        if exc.v1_accepts:
            # x402 v1 clients read the offers from the body.
            members.update(x402Version=1, error=exc.code, accepts=list(exc.v1_accepts))
    body = problem(status, exc.code, exc.title, exc.detail, instance=instance, **members)
    response = problem_response(body, headers=headers, scrubber=scrubber)
    if isinstance(exc, PaymentError):
        for value in exc.www_authenticate:  # one header per MPP offer (RFC 9110 allows repeating it)
            response.headers.append("WWW-Authenticate", value)
    return response


async def _on_studio402_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Studio402Error)
    scrubber = scrubber_of(request)
    if status_for(exc) >= 500:
        detail = scrubber.scrub(exc.detail)
        log.error("%s on %s: %s", type(exc).__name__, request.url.path, detail, exc_info=exc)
    return error_response(exc, request.url.path, scrubber=scrubber)


async def _on_request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    failed = ValidationFailed(field_errors_from_pydantic(exc.errors()))
    return error_response(failed, request.url.path, scrubber=scrubber_of(request))


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
        exc.status_code, "http_error"
    )
    body = problem(exc.status_code, code, str(exc.detail), str(exc.detail), instance=request.url.path)
    return problem_response(body, headers=dict(exc.headers or {}), scrubber=scrubber_of(request))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    body = problem(
        500,
        "internal_error",
        "Internal error",
        "An unexpected error occurred; nothing was charged unless a job id was returned.",
        instance=request.url.path,
    )
    return problem_response(body)


def install(app: FastAPI) -> None:
    app.add_exception_handler(Studio402Error, _on_studio402_error)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)
