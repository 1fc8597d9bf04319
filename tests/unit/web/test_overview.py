"""The staff overview's counts per domain: reporting, silent, open and recent alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.formats import Alert
from api.sensors import QuantityInfo, Sensor
from api.web.overview import OverviewOptions, is_silent, overview_document

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
OPTIONS = OverviewOptions(
    tenant="demo", now=NOW, stale_after=timedelta(hours=1), span=timedelta(hours=24)
)


def sensor(sensor_id: str, *quantities: tuple[str, timedelta]) -> Sensor:
    return Sensor(
        id=sensor_id,
        tenant="demo",
        quantities=[
            QuantityInfo(quantity=q, last_value=1.0, last_time=NOW - age) for q, age in quantities
        ],
    )


def alert(sensor_id: str, quantity: str, started: timedelta, ended: timedelta | None) -> Alert:
    return Alert(
        started_at=NOW - started,
        ended_at=NOW - ended if ended is not None else None,
        state="open" if ended is None else "closed",
        tenant="demo",
        sensor_id=sensor_id,
        rule=f"{quantity}_high",
        quantity=quantity,
        value=99.0,
    )


def test_a_sensor_is_silent_when_its_newest_reading_is_too_old() -> None:
    fresh_and_old = sensor("a", ("pm2_5", timedelta(minutes=5)), ("pm10", timedelta(days=3)))
    assert not is_silent(fresh_and_old, NOW, timedelta(hours=1))
    assert is_silent(sensor("b", ("pm2_5", timedelta(hours=2))), NOW, timedelta(hours=1))
    assert is_silent(Sensor(id="c", tenant="demo"), NOW, timedelta(hours=1))


def test_counts_per_domain_and_the_alerts_of_the_span() -> None:
    sensors = [
        sensor("air-1", ("pm2_5", timedelta(minutes=1)), ("temperature", timedelta(minutes=1))),
        sensor("air-2", ("pm2_5", timedelta(hours=3))),
        sensor("noise-1", ("noise_level", timedelta(minutes=2))),
        sensor("wx-1", ("temperature", timedelta(minutes=2))),
    ]
    alerts = [
        alert("air-1", "pm2_5", timedelta(hours=2), None),  # open, started in the span
        alert("air-2", "pm2_5", timedelta(days=3), None),  # open, started long ago
        alert("noise-1", "noise_level", timedelta(hours=30), timedelta(hours=29)),  # old, closed
        alert("noise-1", "noise_level", timedelta(hours=5), timedelta(hours=4)),  # closed, in span
        alert("gone", "temperature", timedelta(hours=1), None),  # a sensor no longer listed
    ]
    doc = overview_document(sensors, alerts, OPTIONS)
    rows = {r["domain"]: r for r in doc["domains"]}
    assert [r["domain"] for r in doc["domains"]] == ["air", "noise", "weather"]
    assert rows["air"] | {"silent_sensors": None} == {
        "domain": "air",
        "sensors": 2,
        "reporting": 1,
        "silent": 1,
        "silent_sensors": None,
        "alerts_open": 2,
        "alerts_started": 1,
    }
    assert rows["air"]["silent_sensors"] == [{"id": "air-2", "last_seen": "2026-11-20T09:00:00Z"}]
    assert (rows["noise"]["alerts_open"], rows["noise"]["alerts_started"]) == (0, 1)
    assert (rows["weather"]["sensors"], rows["weather"]["alerts_open"]) == (1, 1)
    assert [a["sensor_id"] for a in doc["alerts"]] == ["gone", "air-1", "noise-1", "air-2"]
    assert doc["since"] == "2026-11-19T12:00:00Z"
