"""Stale-sensor and low-battery alerts from a real worker, on real Kafka and InfluxDB.

The worker runs with a 2 s expected interval, stale factor 2 and a check every second, so a
sensor silent for more than 4 s of wall-clock time opens a ``stale`` episode; its next reading
closes it. A ``battery_level`` under 15 % opens the built-in ``low_battery`` episode, a
recovered level closes it. Each episode is checked on the alerts topic (an ``open`` and a
``closed`` event) and in InfluxDB (one point, closed, with its end time).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from influxdb_client import InfluxDBClient

from api.flux import params_record
from streams.alerts import AlertEvent
from tests.integration.test_streams_worker import BOOTSTRAP, Scenario
from tests.support import consume_until, wait_for
from urbanpulse.model import Reading
from urbanpulse.settings import Settings

INTERVAL_S, FACTOR = 2, 2
SILENCE = timedelta(seconds=INTERVAL_S * FACTOR)


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    running = Scenario(tmp_path)
    running.env |= {
        "URBANPULSE_STREAMS__EXPECTED_INTERVAL_S": str(INTERVAL_S),
        "URBANPULSE_STREAMS__STALE_FACTOR": str(FACTOR),
        "URBANPULSE_STREAMS__STALE_CHECK_S": "1",
        "URBANPULSE_METRICS__WORKER_PORT": "0",  # another worker may hold the default port
    }
    running.influx.close()
    running.influx = InfluxDBClient(url=Settings().influx.url, token="", org="-", timeout=120_000)
    try:
        yield running
    finally:
        running.close()


def now_reading(tenant: str, sensor: str, quantity: str, unit: str, value: float) -> Reading:
    """A reading observed and received now (stale checks use the receipt time)."""
    at = datetime.now(UTC)
    return Reading(
        tenant=tenant,
        sensor_id=sensor,
        quantity=quantity,
        value=value,
        unit=unit,
        observed_at=at,
        received_at=at,
        source_format="json",
        message_id=f"{sensor}-{quantity}-{at.timestamp()}",
    )


def events(scenario: Scenario, wanted: set[tuple[str, str, str]], timeout_s: float) -> Any:
    """Alert events from the start of the topic until every (sensor, rule, state) is seen."""
    topic = scenario.env["URBANPULSE_KAFKA__ALERTS_TOPIC"]

    def seen(values: list[bytes]) -> set[tuple[str, str, str]]:
        parsed = [AlertEvent.model_validate_json(v) for v in values]
        return {(e.sensor_id, e.rule, e.state) for e in parsed}

    values = consume_until(BOOTSTRAP, topic, lambda v: wanted <= seen(v), timeout_s)
    assert wanted <= seen(values), f"missing alert events {wanted - seen(values)}"
    return [AlertEvent.model_validate_json(v) for v in values]


def stored_alerts(scenario: Scenario) -> list[dict[str, Any]]:
    text = (
        params_record({"tenant": scenario.tenant})
        + """
from(bucket: "urbanpulse/agg")
  |> range(start: -15m)
  |> filter(fn: (r) => r._measurement == "alert" and r.tenant == params.tenant)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
"""
    )
    tables = scenario.influx.query_api().query(text, org="-")
    return [record.values for table in tables for record in table.records]


@pytest.mark.timeout(600)
def test_a_silent_sensor_opens_a_stale_episode_and_its_next_reading_closes_it(
    scenario: Scenario,
) -> None:
    worker = scenario.start_worker()
    wait_for(lambda: "Ready" in worker.log.read_text(errors="replace"), 120, "the worker ready")
    tenant = scenario.tenant
    scenario.produce(
        [
            now_reading(tenant, "s-0", "temperature", "Cel", 20.0),
            now_reading(tenant, "s-1", "battery_level", "%", 10.0),
        ]
    )
    first = time.monotonic()
    opened = events(
        scenario, {("s-0", "stale", "open"), ("s-1", "low_battery", "open")}, timeout_s=120
    )
    print(f"\nstale alert open {time.monotonic() - first:.1f} s after the last reading")
    worker.check_alive()
    scenario.produce(
        [
            now_reading(tenant, "s-0", "temperature", "Cel", 20.5),
            now_reading(tenant, "s-1", "battery_level", "%", 80.0),
        ]
    )
    closing = {("s-0", "stale", "closed"), ("s-1", "low_battery", "closed")}
    every = events(scenario, closing, timeout_s=120)

    stale_open = next(
        e for e in opened if (e.sensor_id, e.rule, e.state) == ("s-0", "stale", "open")
    )
    stale_closed = next(
        e for e in every if (e.sensor_id, e.rule, e.state) == ("s-0", "stale", "closed")
    )
    assert stale_open.ended_at is None and stale_open.quantity == "all"
    assert stale_closed.started_at == stale_open.started_at
    assert stale_closed.ended_at is not None and stale_closed.ended_at > stale_open.started_at
    assert stale_open.value == SILENCE.total_seconds()

    def closed_in_influxdb() -> list[dict[str, Any]]:
        rows = stored_alerts(scenario)
        done = [
            r
            for r in rows
            if (r["sensor_id"], r["rule"]) in {("s-0", "stale"), ("s-1", "low_battery")}
            and r["_time"] in {stale_open.started_at, low_open.started_at}
            and r["state"] == "closed"
        ]
        return done if len(done) == 2 else []

    low_open = next(e for e in opened if e.rule == "low_battery")
    assert low_open.value == 10.0
    rows = wait_for(closed_in_influxdb, 120, "both episodes closed in InfluxDB")
    for row in rows:
        assert row["ended_at"] and row["started_at"]
    [stale_row] = [r for r in rows if r["rule"] == "stale"]
    assert stale_row["ended_at"] == stale_closed.ended_at.isoformat().replace("+00:00", "Z")
