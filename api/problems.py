"""Every error as RFC 9457 problem+json: the exception handlers of the app.

A :class:`~api.params.BadQuery` raised anywhere in a route is a 400 with its message, a
:class:`~api.privacy.NotPublished` a 404; FastAPI's own validation errors are a 400 (a 422 for
a request body); an unreachable InfluxDB is a 503, a query InfluxDB refuses a 500 (a bug).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from influxdb_client.rest import ApiException
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from urllib3.exceptions import HTTPError as Urllib3Error

from api.http import PROBLEM_MEDIA_TYPE
from api.params import BadQuery
from api.privacy import NotPublished

log = logging.getLogger(__name__)

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem(
    status: int, detail: Any, instance: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A problem+json answer with the status's title."""
    body = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    """Every error is RFC 9457 problem+json; a bad query is a 400 with the reason."""
    app.exception_handler(StarletteHTTPException)(_http_error)
    app.exception_handler(RequestValidationError)(_invalid)
    app.exception_handler(BadQuery)(_bad_query)
    app.exception_handler(ApiException)(_store_answered)
    app.exception_handler(Urllib3Error)(_store_down)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        # Starlette names only the first route of the path; with several (the admin routes),
        # Allow must list the methods of them all (RFC 9110, 15.5.6).
        allowed = _allowed_methods(request.app, request)
        headers = (headers or {}) | ({"Allow": allowed} if allowed else {})
    return problem(exc.status_code, exc.detail, request.url.path, headers)


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in exc.errors()
    )
    # A bad query is a 400; a request body that is not what the route takes (the admin
    # routes) is a 422, as HTTP semantics have it.
    status = 422 if any(e["loc"][:1] == ("body",) for e in exc.errors()) else 400
    return problem(status, problems, request.url.path)


async def _bad_query(request: Request, exc: BadQuery) -> JSONResponse:
    status = 404 if isinstance(exc, NotPublished) else 400
    return problem(status, str(exc), request.url.path)


STORE_DOWN = "the data store did not answer; try again shortly"
# InfluxDB answers these when it cannot serve anyone (token, bucket, overload): an outage.
_OUTAGE_STATUSES = frozenset({401, 403, 404, 429})


async def _store_answered(request: Request, exc: ApiException) -> JSONResponse:
    """InfluxDB answered with an error: an outage (503), or a query it refused (500).

    A query InfluxDB refuses as malformed (400, 422) is one this API built from input it
    accepted: a bug of ours, not the client's and not an outage, so it is logged as an error
    and answered 500, never 503 (which tells clients to retry the same request forever and
    would hide the bug from tests).
    """
    status = exc.status or 0
    if 400 <= status < 500 and status not in _OUTAGE_STATUSES:
        log.error("InfluxDB refused a query of %s: %s %s", request.url, status, exc.body)
        detail = "the API built a query the data store refused; this is a bug, and it is logged"
        return problem(500, detail, request.url.path)
    return await _store_down(request, exc)


async def _store_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("InfluxDB did not answer %s: %s", request.url.path, exc)
    return problem(503, STORE_DOWN, request.url.path)


def _allowed_methods(app: FastAPI, request: Request) -> str | None:
    """Every method some route of ``app`` answers at the request's path (asked of the routes
    themselves: FastAPI keeps included routers as routes of their own)."""
    found = [
        method
        for method in ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
        if any(
            route.matches(dict(request.scope, method=method))[0] == Match.FULL
            for route in app.routes
        )
    ]
    return ", ".join(found) or None
