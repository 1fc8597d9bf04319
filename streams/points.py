"""How a canonical reading becomes an InfluxDB point (pure).

Measurement ``reading``; tags ``tenant``, ``sensor_id``, ``quantity``; time ``observed_at``.
Those four decide the series and timestamp, so the same reading written twice is the same
point: replays and retries overwrite instead of duplicating. Everything else is a field.
"""

from __future__ import annotations

from influxdb_client import Point, WritePrecision

from urbanpulse.model import Reading

MEASUREMENT = "reading"
TAGS = ("tenant", "sensor_id", "quantity")


def to_point(reading: Reading) -> Point:
    """The InfluxDB point of one reading."""
    point = (
        Point(MEASUREMENT)
        .tag("tenant", reading.tenant)
        .tag("sensor_id", reading.sensor_id)
        .tag("quantity", reading.quantity)
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
