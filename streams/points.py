"""How a canonical reading becomes an InfluxDB point (pure).

Measurement ``reading``; tags ``tenant``, ``sensor_id``, ``quantity``; time ``observed_at``.
Those four decide the series and timestamp, so the same reading written twice is the same
point: replays and retries overwrite instead of duplicating. The sensor's registry labels
(:class:`SensorLabels`: ``privacy``, and ``licence`` and ``sensor_type`` when registered) are
tags too: one value per sensor, so they add no series, and the API filters on them cheaply.
They stay the same for a sensor unless the registry entry changes (docs/registry.md).
Everything else is a field.

Aggregates (measurement ``aggregate``) and alerts (measurement ``alert``) go to the aggregate
bucket, with the schema agreed with the API and documented in docs/streams.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from influxdb_client import Point, WritePrecision

from streams.windows import as_datetime
from urbanpulse.influx_layout import (
    AGGREGATE_MEASUREMENT,
    ALERT_MEASUREMENT,
    READING_MEASUREMENT,
)
from urbanpulse.model import Reading

if TYPE_CHECKING:
    from streams.alerts import AlertEvent
    from streams.pipeline import AggregateUpdate
    from urbanpulse.registry import SensorInfo


@dataclass(frozen=True)
class SensorLabels:
    """What the registry says about a sensor that travels with its points (as tags)."""

    privacy: str = "open"
    licence: str | None = None
    sensor_type: str | None = None
    district: str | None = None

    @classmethod
    def of(cls, info: SensorInfo | None) -> SensorLabels:
        """The labels of a registered sensor; an unregistered one is ``open`` (as before)."""
        if info is None:
            return cls()
        return cls(info.privacy, info.licence, info.sensor_type, info.district)

    def tag(self, point: Point) -> Point:
        """Add the labels to a point: ``privacy`` always, the others when known."""
        point.tag("privacy", self.privacy)
        if self.licence:
            point.tag("licence", self.licence)
        if self.sensor_type:
            point.tag("sensor_type", self.sensor_type)
        if self.district:
            point.tag("district", self.district)
        return point


OPEN = SensorLabels()


def to_point(reading: Reading, labels: SensorLabels = OPEN) -> Point:
    """The InfluxDB point of one reading, tagged with its sensor's registry labels."""
    point = (
        labels.tag(
            Point(READING_MEASUREMENT)
            .tag("tenant", reading.tenant)
            .tag("sensor_id", reading.sensor_id)
            .tag("quantity", reading.quantity)
        )
        .field("value", float(reading.value))
        .field("unit", reading.unit)
        .field("source_format", reading.source_format)
        .field("message_id", reading.message_id)
        .field("received_at", reading.received_at.isoformat())
        .field("quality_flags", ",".join(reading.quality_flags))
        .time(reading.observed_at, WritePrecision.NS)
    )
    if reading.location is not None:
        point.field("lat", reading.location.lat).field("lon", reading.location.lon)
        if reading.location.alt is not None:
            point.field("alt", reading.location.alt)
    return point


def aggregate_point(update: AggregateUpdate, privacy: str = "open") -> Point:
    """The point of a window's running aggregate: time = window start, so rewrites overwrite.

    ``privacy`` is the sensor's class (a district aggregate is ``open``: only open sensors
    feed it), so the API can leave out a restricted sensor's aggregates.
    """
    subject_tag = "sensor_id" if update.scope == "sensor" else "district"
    return (
        Point(AGGREGATE_MEASUREMENT)
        .tag("privacy", privacy)
        .tag("tenant", update.tenant)
        .tag("scope", update.scope)
        .tag(subject_tag, update.subject)
        .tag("quantity", update.quantity)
        .tag("window", update.window)
        .field("count", int(update.value.count))
        .field("mean", float(update.value.mean))
        .field("min", float(update.value.min))
        .field("max", float(update.value.max))
        .field("last", float(update.value.last))
        .field("unit", update.unit)
        .time(as_datetime(update.start_us), WritePrecision.NS)
    )


def alert_point(event: AlertEvent, privacy: str = "open") -> Point:
    """The point of an alert episode: time = episode start, so closing overwrites opening."""
    return (
        Point(ALERT_MEASUREMENT)
        .tag("privacy", privacy)
        .tag("tenant", event.tenant)
        .tag("sensor_id", event.sensor_id)
        .tag("rule", event.rule)
        .tag("quantity", event.quantity)
        .field("state", event.state)
        .field("started_at", _rfc3339(event.started_at))
        .field("ended_at", "" if event.ended_at is None else _rfc3339(event.ended_at))
        .field("value", float(event.value))
        .field("message", event.message)
        .time(event.started_at, WritePrecision.NS)
    )


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
