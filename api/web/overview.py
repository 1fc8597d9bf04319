"""The staff overview's numbers, per domain: sensors reporting and silent, alerts (pure).

What a pilot team checks every morning, made from the API's own answers: the sensor list of
``/v1/sensors`` (every sensor that reported within ``api.sensors_lookback_days``) and the alert
episodes of ``/v1/alerts``. A sensor is *silent* when its newest reading is older than
``web.stale_after_s``; one silent for longer than the look-back has left the list, so this
cannot count it (the registry, behind ``/v1/admin``, knows every sensor). Dead letters come
from ``/v1/deadletters`` (:mod:`api.web.deadletters`), asked for by the page itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from api.formats import Alert, rfc3339
from api.sensors import Sensor
from urbanpulse.display import DOMAINS, display, sensor_domain


@dataclass(frozen=True, kw_only=True)
class OverviewOptions:
    """The moment of the overview, when a sensor counts as silent, and the span of alerts."""

    tenant: str
    now: datetime
    stale_after: timedelta
    span: timedelta


def newest_reading(sensor: Sensor) -> datetime | None:
    """When the sensor last reported anything."""
    times = [q.last_time for q in sensor.quantities if q.last_time is not None]
    return max(times) if times else None


def is_silent(sensor: Sensor, now: datetime, stale_after: timedelta) -> bool:
    """True when the sensor has not reported for longer than ``stale_after``."""
    newest = newest_reading(sensor)
    return newest is None or now - newest > stale_after


def overview_document(
    sensors: Iterable[Sensor], alerts: Iterable[Alert], options: OverviewOptions
) -> dict[str, Any]:
    """Per domain: sensors, how many report and which are silent; open and recent alerts."""
    rows: dict[str, dict[str, Any]] = {}

    def row(domain: str) -> dict[str, Any]:
        return rows.setdefault(
            domain,
            {
                "domain": domain,
                "sensors": 0,
                "reporting": 0,
                "silent": 0,
                "silent_sensors": [],
                "alerts_open": 0,
                "alerts_started": 0,
            },
        )

    domains: dict[str, str] = {}
    for sensor in sensors:
        domain = sensor_domain([q.quantity for q in sensor.quantities])
        domains[sensor.id] = domain
        counts = row(domain)
        counts["sensors"] += 1
        if is_silent(sensor, options.now, options.stale_after):
            counts["silent"] += 1
            newest = newest_reading(sensor)
            counts["silent_sensors"].append(
                {"id": sensor.id, "last_seen": rfc3339(newest) if newest else None}
            )
        else:
            counts["reporting"] += 1
    since = options.now - options.span
    recent = []
    for alert in alerts:
        domain = domains.get(alert.sensor_id) or display(alert.quantity).domain
        counts = row(domain)
        if alert.ended_at is None:
            counts["alerts_open"] += 1
        if alert.started_at >= since:
            counts["alerts_started"] += 1
        if alert.ended_at is None or alert.started_at >= since:
            recent.append(_alert_row(alert, domain))
    order = {d: i for i, d in enumerate(DOMAINS)}
    return {
        "tenant": options.tenant,
        "generated_at": rfc3339(options.now),
        "since": rfc3339(since),
        "stale_after_s": int(options.stale_after.total_seconds()),
        "domains": sorted(rows.values(), key=lambda r: order.get(r["domain"], len(order))),
        "alerts": sorted(recent, key=lambda a: a["started_at"], reverse=True),
    }


def _alert_row(alert: Alert, domain: str) -> dict[str, Any]:
    return {
        "domain": domain,
        "sensor_id": alert.sensor_id,
        "rule": alert.rule,
        "quantity": alert.quantity,
        "value": alert.value,
        "state": "open" if alert.ended_at is None else "closed",
        "started_at": rfc3339(alert.started_at),
        "ended_at": rfc3339(alert.ended_at) if alert.ended_at else None,
        "message": alert.message,
    }
