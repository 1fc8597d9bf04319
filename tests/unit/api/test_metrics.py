"""api/metrics.py: route templates as labels, status codes, /metrics, and the cost per request."""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import Message, Receive, Scope, Send

from api.app import create_app
from api.metrics import RequestMetrics, install_metrics
from urbanpulse.settings import Settings


def counts(text: str) -> dict[tuple[str, str, str], float]:
    """(route, method, status) → number of requests, from a /metrics exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "urbanpulse_api_request_seconds_count":
                labels = sample.labels
                out[(labels["route"], labels["method"], labels["status"])] = sample.value
    return out


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    router = APIRouter(prefix="/things")

    @router.get("/{thing_id}")
    def thing(thing_id: str) -> dict[str, str]:
        if thing_id == "missing":
            raise HTTPException(404, "no such thing")
        return {"id": thing_id}

    @app.get("/v1/sensors/{sensor_id}")
    def sensor(sensor_id: str) -> dict[str, str]:
        return {"id": sensor_id}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("broken")

    app.include_router(router, prefix="/v1")
    install_metrics(app)
    return TestClient(app, raise_server_exceptions=False)


def test_requests_are_labelled_by_route_template_method_and_status(client: TestClient) -> None:
    for sensor in ("a", "b", "c"):
        assert client.get(f"/v1/sensors/{sensor}").status_code == 200
    assert client.get("/v1/things/x").status_code == 200
    assert client.get("/v1/things/missing").status_code == 404
    assert client.get("/no/such/path/42").status_code == 404
    assert client.post("/v1/sensors/a").status_code == 405
    assert client.get("/boom").status_code == 500
    found = counts(client.get("/metrics").text)
    assert found == {
        ("/v1/sensors/{sensor_id}", "GET", "200"): 3,
        # an included router's route: its full template, prefixes and all
        ("/v1/things/{thing_id}", "GET", "200"): 1,
        ("/v1/things/{thing_id}", "GET", "404"): 1,
        ("unmatched", "GET", "404"): 1,
        ("/v1/sensors/{sensor_id}", "POST", "405"): 1,
        ("/boom", "GET", "500"): 1,
    }


def test_metrics_endpoint_is_prometheus_text(client: TestClient) -> None:
    client.get("/v1/sensors/a")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE urbanpulse_api_request_seconds histogram" in response.text


def test_the_platform_api_serves_metrics_outside_its_openapi_document() -> None:
    app = create_app(Settings())
    assert "/metrics" not in app.openapi()["paths"]
    assert TestClient(app).get("/metrics").status_code == 200


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> Message:
    return {"type": "http.request", "body": b""}


async def _send(message: Message) -> None:
    return None


async def _per_request_s(app: object, n: int) -> float:
    scope: Scope = {"type": "http", "method": "GET", "path": "/x", "headers": []}
    start = time.perf_counter()
    for _ in range(n):
        await app(dict(scope), _receive, _send)  # type: ignore[operator]
    return (time.perf_counter() - start) / n


def test_the_middleware_adds_well_under_a_millisecond() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("t_seconds", "t", ["route", "method", "status"], registry=registry)
    timed = RequestMetrics(_ok, histogram)
    n = 20_000
    bare = asyncio.run(_per_request_s(_ok, n))
    with_metrics = asyncio.run(_per_request_s(timed, n))
    overhead_us = (with_metrics - bare) * 1e6
    print(f"\nmetrics middleware overhead: {overhead_us:.1f} µs per request")
    labels = {"route": "unmatched", "method": "GET", "status": "200"}
    assert registry.get_sample_value("t_seconds_count", labels) == n
    # Typically ~5 µs here; the bound leaves room for a busy shared machine.
    assert overhead_us < 200
