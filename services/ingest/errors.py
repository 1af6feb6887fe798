"""Ingest's meaningful errors and their one mapping to HTTP answers.

The JSON API answers ``{"error": ..., "message": ...}``; the ping API answers plain text exactly
as Healthchecks does (``not found``, ``invalid url format``, …) because its clients compare it.
Pure-ASGI middlewares (body limit) use :func:`answer` too, so this stays the only mapping.
"""

from __future__ import annotations

import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, PlainTextResponse, Response

from shared.bus import BusUnavailable
from shared.tenancy import TenancyError


class IngestError(Exception):
    """Base of ingest's own errors; the message is shown to the client."""


class Unauthorized(IngestError):
    """No token, or one that is unknown or revoked."""


class PayloadTooLarge(IngestError):
    """The request body is over the configured limit."""


class RateLimited(IngestError):
    """The caller spent its request budget; it may retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: float, message: str = "rate limit exceeded, slow down") -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyFailures(RateLimited):
    """The client address failed to authenticate too often; its lookups wait."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after, "too many failed authentications from this address, "
                         "retry later")


class InvalidInput(IngestError):
    """Input that passed the schema but breaks a rule (e.g. an unknown time zone)."""


class PingError(IngestError):
    """A ping was refused; answered in plain text, as Healthchecks does."""

    status_code = 400


class PingNotFound(PingError):
    status_code = 404

    def __init__(self) -> None:
        super().__init__("not found")


class PingBadRequest(PingError):
    status_code = 400


def _json(error: str, message: str, status: int, **headers: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status, headers=headers)


def answer(exc: Exception) -> Response:
    """The HTTP answer for one of ingest's errors (or a bus outage)."""
    if isinstance(exc, PingError):
        # CORS header as Healthchecks sends it, so browser-side pingers can read the answer.
        return PlainTextResponse(
            str(exc), status_code=exc.status_code, headers={"Access-Control-Allow-Origin": "*"}
        )
    if isinstance(exc, Unauthorized):
        return _json("unauthorized", str(exc), 401, **{"WWW-Authenticate": "Bearer"})
    if isinstance(exc, PayloadTooLarge):
        return _json("too large", str(exc), 413)
    if isinstance(exc, RateLimited):
        return _json("rate limited", str(exc), 429, **{"Retry-After": str(_seconds(exc))})
    if isinstance(exc, InvalidInput | TenancyError):
        return _json("invalid request", str(exc), 422)
    if isinstance(exc, BusUnavailable):
        # The upload was not stored: the client must retry, and it is safe to (Nats-Msg-Id).
        return _json("unavailable", "event store unavailable, retry later", 503, **{
            "Retry-After": "5"
        })
    raise TypeError(f"no HTTP mapping for {exc!r}")


def _seconds(exc: RateLimited) -> int:
    return max(1, math.ceil(exc.retry_after))


def _validation_details(exc: RequestValidationError) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
            "message": err["msg"],
        }
        for err in exc.errors()
    ]


def install_error_mapping(app: FastAPI) -> None:
    async def _mapped(_: Request, exc: Exception) -> Response:
        return answer(exc)

    for cls in (IngestError, TenancyError, BusUnavailable):
        app.add_exception_handler(cls, _mapped)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith("/ping/"):
            # Ping clients get Healthchecks' plain-text answer, never a JSON error document.
            return answer(PingBadRequest("invalid url format"))
        return JSONResponse(
            {"error": "invalid request", "message": "the request does not match the schema",
             "details": _validation_details(exc)},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        # Routing answers (404 unknown path, 405 wrong method, 400 unreadable body) in our shape.
        return JSONResponse(
            {"error": "http error", "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=exc.headers,
        )
