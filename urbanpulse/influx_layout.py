"""The InfluxDB layout every part agrees on: measurements, tags and fields (pure constants).

Two buckets (``InfluxSettings.raw_bucket`` and ``aggregate_bucket``; InfluxDB 1.8: database
``urbanpulse`` with retention policies ``raw`` and ``agg``):

* ``reading`` (raw bucket): tags :data:`READING_TAGS` plus the sensor's registry labels
  :data:`LABEL_TAGS`; fields :data:`READING_FIELDS`.
* ``aggregate`` (aggregate bucket): tags :data:`AGGREGATE_TAGS`; fields :data:`AGGREGATE_FIELDS`.
* ``alert`` (aggregate bucket): tags :data:`ALERT_TAGS`; fields :data:`ALERT_FIELDS`.

A reading's time is its observation time; an aggregate's the window start; an alert's the
episode start. Tags plus time identify a point, so a rewrite overwrites (docs/streams.md).
The stream worker writes these (``streams.points``); the API, the dashboards and the
benchmarks read them by these names only.
"""

from __future__ import annotations

READING_MEASUREMENT = "reading"
AGGREGATE_MEASUREMENT = "aggregate"
ALERT_MEASUREMENT = "alert"

READING_TAGS = ("tenant", "sensor_id", "quantity")
"""The tags that decide a reading's series (with its time: the point)."""
LABEL_TAGS = ("privacy", "licence", "sensor_type", "district")
"""Registry labels a reading carries as tags: one value per sensor, so no extra series."""
READING_FIELDS = (
    "value",
    "unit",
    "source_format",
    "message_id",
    "received_at",
    "quality_flags",
    "lat",
    "lon",
    "alt",
)

AGGREGATE_TAGS = ("privacy", "tenant", "scope", "sensor_id", "district", "quantity", "window")
"""``sensor_id`` for scope ``sensor``, ``district`` for scope ``district``."""
AGGREGATE_FIELDS = ("count", "mean", "min", "max", "last", "unit")

ALERT_TAGS = ("privacy", "tenant", "sensor_id", "rule", "quantity")
ALERT_FIELDS = ("state", "started_at", "ended_at", "value", "message")
ALERT_OPEN = "open"
"""The ``state`` of an alert episode that has not ended (else ``closed``)."""
STALE_RULE = "stale"
"""The ``rule`` tag of a stale-sensor alert: no reading for too long."""
