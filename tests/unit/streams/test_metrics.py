"""streams/metrics.py: lag arithmetic, health, counters, and the /metrics + /health WSGI app."""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.alerts import AlertEvent
from streams.metrics import (
    LAG_REFRESH_S,
    NO_PROGRESS_S,
    STALL_PERIODS,
    WorkerMetrics,
    consumer_lag,
    health_of,
    partition_lags,
)
from tests.unit.streams.helpers import reading


@pytest.mark.parametrize(
    ("highwater", "committed", "earliest", "lag"),
    [
        (100, 40, 0, 60),  # committed = the next offset to process
        (100, 100, 0, 0),  # caught up
        (100, None, 0, 100),  # nothing committed yet: everything from the earliest offset
        (100, None, 30, 70),  # ... which retention may have moved on
        (100, -1001, 10, 90),  # Kafka's "no offset" sentinel is nothing committed, too
        (None, 5, 0, 0),  # no fetch yet: high watermark unknown
        (50, 60, 0, 0),  # a commit newer than the high watermark read: no negative lag
        (0, None, None, 0),  # an empty partition
    ],
)
def test_consumer_lag(
    highwater: int | None, committed: int | None, earliest: int | None, lag: int
) -> None:
    assert consumer_lag(highwater, committed, earliest) == lag


def test_partition_lags_cover_exactly_the_assigned_partitions() -> None:
    assigned = [("readings", 0), ("readings", 1)]
    lags = partition_lags(
        assigned,
        highwaters={("readings", 0): 10, ("readings", 1): 7, ("other", 0): 99},
        committed={("readings", 0): 4, ("readings", 1): None},
        earliest={("readings", 1): 2},
    )
    assert lags == {("readings", 0): 6, ("readings", 1): 5}


def test_health_starts_ok_and_stalls() -> None:
    assert health_of(None, 0, 100.0).status == "starting"
    assert health_of(None, 0, 100.0).http_status == 503
    fresh = health_of(95.0, 3, 100.0)
    assert (fresh.status, fresh.partitions, fresh.last_refresh_age_s) == ("ok", 3, 5.0)
    assert fresh.http_status == 200
    stale = health_of(0.0, 3, LAG_REFRESH_S * STALL_PERIODS + 1)
    assert stale.status == "stalled"
    assert stale.http_status == 503


def test_health_says_no_progress_when_a_partition_with_lag_stands_still_under_a_minute() -> None:
    metrics = WorkerMetrics()
    tp = ("readings", 0)
    start = time.monotonic() - (NO_PROGRESS_S + LAG_REFRESH_S)
    metrics.set_lags({tp: 5}, start, {tp: 100})
    metrics.set_lags({tp: 9}, start + LAG_REFRESH_S, {tp: 101})  # progress: the clock restarts
    metrics.set_lags({tp: 40}, time.monotonic() - 1, {tp: 101})
    assert metrics.health().status == "ok"  # still for NO_PROGRESS_S - 1 s
    metrics.set_lags({tp: 50}, time.monotonic(), {tp: 101})
    health = metrics.health()
    assert (health.status, health.http_status, health.partitions_without_progress) == (
        "no_progress",
        503,
        1,
    )
    assert NO_PROGRESS_S + LAG_REFRESH_S < 60  # said within a minute
    metrics.set_lags({tp: 0}, time.monotonic(), {tp: 151})  # caught up
    assert metrics.health().status == "ok"


def get(app: Any, path: str) -> tuple[str, bytes]:
    """Call the WSGI app: (status line, body)."""
    status: list[str] = []
    body: Iterable[bytes] = app(
        {"PATH_INFO": path, "REQUEST_METHOD": "GET"}, lambda s, h: status.append(s)
    )
    return status[0], b"".join(body)


def samples(metrics: WorkerMetrics) -> dict[str, float]:
    status, body = get(metrics.wsgi_app(), "/metrics")
    assert status.startswith("200")
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def test_readings_are_counted_by_outcome() -> None:
    metrics = WorkerMetrics()
    stored = [reading(), reading(quality_flags=("spike",)), reading(message_id="m2")]
    metrics.count_readings(stored, deadletter=2, duplicate=1)
    metrics.count_readings([], deadletter=0, duplicate=4)
    found = samples(metrics)
    assert found["urbanpulse_worker_readings_total{outcome=stored}"] == 3
    assert found["urbanpulse_worker_readings_total{outcome=flagged}"] == 1
    assert found["urbanpulse_worker_readings_total{outcome=deadletter}"] == 2
    assert found["urbanpulse_worker_readings_total{outcome=duplicate}"] == 5


def test_writes_are_timed_and_points_counted_only_when_accepted() -> None:
    metrics = WorkerMetrics()
    with metrics.timed_write("raw", {"raw": 3}):
        pass
    with metrics.timed_write("aggregate", {"aggregate": 2, "alert": 1}):
        pass
    with metrics.timed_write("raw", {"raw": 0}):  # nothing to write: no request, not timed
        pass
    with pytest.raises(OSError), metrics.timed_write("raw", {"raw": 5}):
        raise OSError("InfluxDB away")
    found = samples(metrics)
    assert found["urbanpulse_worker_influx_write_seconds_count{kind=raw}"] == 2
    assert found["urbanpulse_worker_influx_write_seconds_count{kind=aggregate}"] == 1
    assert found["urbanpulse_worker_points_written_total{kind=raw}"] == 3
    assert found["urbanpulse_worker_points_written_total{kind=aggregate}"] == 2
    assert found["urbanpulse_worker_points_written_total{kind=alert}"] == 1


def test_alerts_are_counted_by_rule_and_state() -> None:
    metrics = WorkerMetrics()
    at = datetime(2026, 11, 27, tzinfo=UTC)
    event: dict[str, Any] = {
        "tenant": "t",
        "sensor_id": "s",
        "rule": "pm10_high",
        "quantity": "pm10",
        "started_at": at,
        "ended_at": None,
        "value": 80.0,
        "message": "",
    }
    metrics.count_alerts(
        [AlertEvent(state="open", **event), AlertEvent(state="closed", **event | {"ended_at": at})]
    )
    found = samples(metrics)
    assert found["urbanpulse_worker_alerts_total{rule=pm10_high,state=open}"] == 1
    assert found["urbanpulse_worker_alerts_total{rule=pm10_high,state=closed}"] == 1


def test_lag_gauges_follow_the_assignment() -> None:
    metrics = WorkerMetrics()
    metrics.set_lags({("readings", 0): 5, ("readings", 1): 0}, now=1.0)
    metrics.set_lags({("readings", 1): 2}, now=2.0)  # partition 0 went to another worker
    found = samples(metrics)
    lags = {k: v for k, v in found.items() if k.startswith("urbanpulse_worker_consumer_lag")}
    assert lags == {"urbanpulse_worker_consumer_lag{partition=1,topic=readings}": 2}


def test_health_endpoint() -> None:
    metrics = WorkerMetrics()
    app = metrics.wsgi_app()
    status, body = get(app, "/health")
    assert status.startswith("503")
    assert json.loads(body) == {
        "status": "starting",
        "partitions": 0,
        "last_refresh_age_s": None,
        "partitions_without_progress": 0,
    }
    metrics.set_lags({("readings", 0): 0}, now=time.monotonic())
    status, body = get(app, "/health")
    assert status.startswith("200")
    assert json.loads(body)["status"] == "ok"
    assert json.loads(body)["partitions"] == 1


def test_serve_answers_and_a_taken_port_only_costs_the_metrics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = WorkerMetrics()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="streams.metrics"):
            metrics.serve("127.0.0.1", port)  # a second worker on the same host: no crash
        assert "cannot listen" in caplog.text
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    metrics.serve("127.0.0.1", port)
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert b"urbanpulse_worker_consumer_lag" in response.read()
