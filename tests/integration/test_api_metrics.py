"""The API as a real process (``urbanpulse api``) on real InfluxDB: /metrics and JSON logs.

A few requests of different routes and outcomes, then a scrape: each request is counted under
its route template (never the raw path), method and status; /metrics stays out of the OpenAPI
document; every line the process logged (uvicorn's included) is a JSON object.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.influx_writer import InfluxWriter
from tests.support import Child, free_port, http_get, unique, wait_for
from urbanpulse.model import Reading
from urbanpulse.settings import Settings


class RunningApi:
    """``urbanpulse api`` on a free port, logging JSON to a file."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.log = tmp / "api.log"
        env = os.environ | {"URBANPULSE_LOG_FORMAT": "json", "URBANPULSE_LOG_LEVEL": "INFO"}
        command = ["api", "--host", "127.0.0.1", "--port", str(self.port)]
        self.child = Child.urbanpulse(command, env, self.log)

    def get(self, path: str) -> tuple[int, bytes]:
        return http_get(f"http://127.0.0.1:{self.port}{path}")

    def up(self) -> bool:
        self.child.check_alive()
        return self.get("/openapi.json")[0] == 200

    def stop(self) -> None:
        self.child.stop()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[RunningApi]:
    running = RunningApi(tmp_path)
    try:
        wait_for(running.up, 60, "the API to answer")
        yield running
    finally:
        running.stop()


def stored_sensors(tenant: str) -> list[str]:
    at = datetime.now(UTC) - timedelta(minutes=10)
    sensors = ["m-1", "m-2"]
    writer = InfluxWriter(Settings().influx)
    try:
        writer.write(
            [
                Reading(
                    tenant=tenant,
                    sensor_id=sensor,
                    quantity="pm10",
                    value=12.5,
                    unit="ug/m3",
                    observed_at=at,
                    received_at=at,
                    source_format="json",
                    message_id=f"{sensor}-1",
                )
                for sensor in sensors
            ]
        )
    finally:
        writer.close()
    return sensors


def request_counts(text: str) -> dict[tuple[str, str, str], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "urbanpulse_api_request_seconds_count":
                labels = sample.labels
                out[(labels["route"], labels["method"], labels["status"])] = sample.value
    return out


def test_requests_are_counted_by_route_template(api: RunningApi) -> None:
    tenant = unique("apim")
    for sensor in stored_sensors(tenant):
        status, body = api.get(f"/v1/sensors/{sensor}/observations?tenant={tenant}")
        assert status == 200, body
        assert json.loads(body)["data"], body
    assert api.get("/v1/sensors/m-1/observations?format=xml")[0] == 400
    assert api.get(f"/nothing/here/{tenant}")[0] == 404

    status, body = api.get("/metrics")
    assert status == 200
    counts = request_counts(body.decode())
    route = "/v1/sensors/{sensor_id}/observations"
    assert counts[(route, "GET", "200")] == 2
    assert counts[(route, "GET", "400")] == 1
    assert counts[("unmatched", "GET", "404")] == 1
    assert not any(tenant in key or "m-1" in key for labels in counts for key in labels)
    assert "/metrics" not in json.loads(api.get("/openapi.json")[1])["paths"]

    api.stop()
    lines = api.log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line: one JSON object
    assert {r["component"] for r in records} == {"api"}
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any("/metrics" in r["message"] for r in access)
