"""Schemathesis over the API's whole OpenAPI, SensorThings included: no 5xx, and every answer
matches its documented schema.

Runs against the real InfluxDB, but on a database of its own (created here with a little data
of every kind, dropped afterwards), so that queries without a tenant scan only this test's
points. Over the shared development database (everybody's data, a loaded 2-core machine) those
queries ran into the client's 10 s read timeout, and the test counted the API's 503 as a
failure. Here they answer in milliseconds; the read timeout is raised to 30 s all the same.

What counts as a failure: any 5xx, with one exception, a ``503`` whose problem says the store
did not answer (the API's documented answer to a slow store, which says nothing about the
API) and the readiness probes' documented 503. A query InfluxDB *refuses* is a 500
(api/problems.py), so a query the API builds badly still fails here.

Bounded: a fixed number of generated cases per operation (``MAX_EXAMPLES``), no shrinking.
``positive_data_acceptance`` is left out on purpose: a query valid by the schema may still be
refused with a 4xx the schema cannot express (``from`` after ``to``, a range longer than
allowed, a quantity that is not open data, an unknown sensor or SensorThings id) — each of
those is a documented 400 or 404 problem, which the other checks verify.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from influxdb_client import Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from schemathesis.checks import not_a_server_error, positive_data_acceptance

from api.app import create_app
from api.problems import STORE_DOWN
from streams.points import reading_line
from urbanpulse.influx import make_client
from urbanpulse.model import Location, Reading
from urbanpulse.settings import Settings

MAX_EXAMPLES = 30
DATABASE = f"it_schema_{uuid.uuid4().hex[:12]}"
NOW = datetime.now(UTC).replace(microsecond=0)
READINESS = ("/readyz", "/health")


def _settings() -> Settings:
    base = Settings()
    influx = base.influx.model_copy(
        update={
            "raw_bucket": f"{DATABASE}/raw",
            "aggregate_bucket": f"{DATABASE}/agg",
            "timeout_ms": 30_000,
        }
    )
    return base.model_copy(update={"influx": influx})


SETTINGS = _settings()
APP = create_app(SETTINGS)
CLIENT = TestClient(APP)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(
    # an endless event stream (a valid case never ends); tests/integration/test_api_stream.py
    path="/v1/stream"
)


def _influxql(statement: str) -> None:
    url = f"{SETTINGS.influx.url}/query"
    body = urllib.parse.urlencode({"q": statement}).encode()
    with urllib.request.urlopen(url, body, timeout=60) as answer:
        result = json.loads(answer.read())
    assert not any("error" in r for r in result.get("results", [])), result


def _readings() -> list[str]:
    points: list[str] = []
    for minutes in range(0, 120, 5):
        for sensor, quantity, unit, where in (
            ("air-002", "pm2_5", "ug/m3", Location(lat=52.1, lon=5.1)),
            ("noise-001", "noise_level", "dB", None),
            ("=cmd", "pm10", "ug/m3", Location(lat=52.0, lon=5.0)),  # a formula as an id
        ):
            moment = NOW - timedelta(minutes=minutes)
            reading = Reading(
                tenant="demo",
                sensor_id=sensor,
                quantity=quantity,
                value=minutes / 7 - 3,
                unit=unit,
                observed_at=moment,
                received_at=moment + timedelta(seconds=1),
                location=where,
                source_format="json",
                message_id=f"{sensor}-{minutes}",
            )
            points.append(reading_line(reading))
    return points


def _aggregates_and_alerts() -> list[Point]:
    hour = NOW.replace(minute=0, second=0)
    points = [
        Point("aggregate")
        .tag("privacy", "open")
        .tag("tenant", "demo")
        .tag("scope", "sensor")
        .tag("sensor_id", "air-002")
        .tag("quantity", "pm2_5")
        .tag("window", "1h")
        .field("count", 12)
        .field("mean", 7.5)
        .field("min", 1.0)
        .field("max", 12.0)
        .field("last", 8.0)
        .field("unit", "ug/m3")
        .time(hour - timedelta(hours=h), WritePrecision.NS)
        for h in range(3)
    ]
    points.append(
        Point("alert")
        .tag("privacy", "open")
        .tag("tenant", "demo")
        .tag("sensor_id", "air-002")
        .tag("rule", "pm2_5_high")
        .tag("quantity", "pm2_5")
        .field("state", "open")
        .field("started_at", (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z"))
        .field("ended_at", "")
        .field("value", 55.5)
        .field("message", "pm2_5 above threshold")
        .time(NOW - timedelta(hours=1), WritePrecision.NS)
    )
    return points


@pytest.fixture(scope="module", autouse=True)
def own_database() -> Iterator[None]:
    """This test's database on the shared InfluxDB 1.8, with a little data of every kind."""
    _influxql(f"CREATE DATABASE {DATABASE} WITH DURATION 1d NAME raw")
    _influxql(f"CREATE RETENTION POLICY agg ON {DATABASE} DURATION 1d REPLICATION 1")
    try:
        with make_client(SETTINGS.influx) as client:
            write = client.write_api(write_options=SYNCHRONOUS)
            write.write(SETTINGS.influx.raw_bucket, SETTINGS.influx.org, _readings())
            write.write(
                SETTINGS.influx.aggregate_bucket, SETTINGS.influx.org, _aggregates_and_alerts()
            )
        yield
    finally:
        _influxql(f"DROP DATABASE {DATABASE}")


def _send(case: schemathesis.Case) -> Any:
    """Send a case through Starlette's TestClient: schemathesis' own requests transport trips
    over the urllib3-future package that httpx2 installs (AttributeError in its connection
    counting)."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    return CLIENT.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers=kwargs.get("headers"),
        content=kwargs.get("content") or kwargs.get("data"),
        json=kwargs.get("json"),
    )


def no_server_error(ctx: Any, response: Any, case: schemathesis.Case) -> None:
    """No 5xx, but the documented answers to a dependency that does not answer."""
    status = response.status_code
    if status < 500:
        return
    if status == 503 and case.path in READINESS:
        return  # readiness says a dependency is down: its documented purpose
    if status == 503 and _problem_detail(response) == STORE_DOWN:
        return  # InfluxDB did not answer in time: the API's documented answer
    raise AssertionError(f"{case.method} {case.formatted_path} answered {status}: {response.text}")


def _problem_detail(response: Any) -> str | None:
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return None
    detail = json.loads(response.content).get("detail")
    return detail if isinstance(detail, str) else None


def test_the_schema_covers_every_operation_sensorthings_included() -> None:
    operations = {
        f"{r.ok().method.upper()} {r.ok().path}" for r in schema.get_all_operations() if r.ok()
    }
    assert "GET /sta/v1.1/{resource}" in operations and "GET /sta/v1.1" in operations
    assert {"GET /livez", "GET /readyz", "GET /health", "POST /v1/admin/sensors"} <= operations
    resource = APP.openapi()["paths"]["/sta/v1.1/{resource}"]["get"]
    assert {p["name"] for p in resource["parameters"]} >= {"$filter", "$top", "$expand", "tenant"}


KNOWN_500S = [  # what answered 500 before (issue 15); each is a 400 problem now
    ("Observations", "phenomenonTime ge 2026-02-30T00:00:00Z"),
    ("Observations", "phenomenonTime le 9999-12-31T23:59:59.999999Z"),
    ("Observations", "phenomenonTime ge 2026-02-01T00:00:00+25:00"),
    (
        "Datastreams('demo:air-002:pm2_5')/Observations",
        "phenomenonTime ge 0001-01-01T00:00:00+01:00",
    ),
]


@pytest.mark.parametrize(("resource", "flt"), KNOWN_500S)
def test_times_that_were_500s_are_documented_400s(resource: str, flt: str) -> None:
    case = schema["/sta/v1.1/{resource}"]["GET"].Case(
        path_parameters={"resource": resource}, query={"$filter": flt}
    )
    response = _send(case)
    assert response.status_code == 400, response.text
    case.validate_response(response, excluded_checks=[positive_data_acceptance])


def test_a_forged_year_1_cursor_is_a_documented_400() -> None:
    raw = "\x1f".join(["0001-01-01T00:00:00+01:00", "demo", "air-002", "pm2_5"])
    cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    case = schema["/v1/observations"]["GET"].Case(query={"cursor": cursor})
    response = _send(case)
    assert response.status_code == 400, response.text
    case.validate_response(response, excluded_checks=[positive_data_acceptance])


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi(case: schemathesis.Case) -> None:
    response = _send(case)
    case.validate_response(
        response,
        excluded_checks=[positive_data_acceptance, not_a_server_error],
        additional_checks=[no_server_error],
    )
