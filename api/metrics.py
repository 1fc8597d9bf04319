"""Prometheus metrics of the API: request durations by route template, on the API's own port.

``urbanpulse_api_request_seconds{route,method,status}`` is a histogram of the time from a
request reaching the application to its response starting (headers sent), the way a client
waits for it. ``route`` is the route's template (``/v1/sensors/{sensor_id}``), never the raw
path, so the number of series stays bounded whatever clients ask for; a path no route matches
is ``unmatched``. ``/metrics`` serves the exposition (left out of the OpenAPI document).

The middleware is plain ASGI (no request objects are built) and costs a few microseconds per
request: ``tests/unit/api/test_metrics.py`` measures it.
"""

from __future__ import annotations

import time

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"
# The API targets p99 < 50 ms: fine buckets below that, coarse ones for slow exports.
REQUEST_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
)  # fmt: skip


def route_template(scope: Scope) -> str:
    """The template of the route that handled the request, or ``unmatched``.

    FastAPI records the full template of a route of an included router (prefixes and all) in
    its own part of the scope; Starlette's ``scope["route"]`` holds the route itself, whose
    ``path_format`` is the full template for the application's own routes.
    """
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None)
    if not template:
        template = getattr(scope.get("route"), "path_format", None)
    return template if isinstance(template, str) and template else UNMATCHED


class RequestMetrics:
    """ASGI middleware observing each HTTP request's duration in a histogram."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self._histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request until its response starts (or it fails: status 500)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        started = False

        async def send_status(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                self._observe(scope, message["status"], start)
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except BaseException:
            if not started:  # the server answers 500 for an exception before the response
                self._observe(scope, 500, start)
            raise

    def _observe(self, scope: Scope, status: int, start: float) -> None:
        labels = (route_template(scope), scope["method"], str(status))
        self._histogram.labels(*labels).observe(time.perf_counter() - start)


def install_metrics(app: FastAPI) -> CollectorRegistry:
    """Add the timing middleware and ``GET /metrics`` to ``app``; return its registry.

    Call it after the other middlewares, so the time includes theirs (gzip, CORS).
    """
    registry = CollectorRegistry()  # one per app: tests build many apps in one process
    histogram = Histogram(
        "urbanpulse_api_request_seconds",
        "time from a request reaching the API to its response starting, by route template",
        ["route", "method", "status"],
        buckets=REQUEST_BUCKETS,
        registry=registry,
    )
    app.add_middleware(RequestMetrics, histogram=histogram)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return registry
