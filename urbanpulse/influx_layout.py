"""The InfluxDB layout every part agrees on: measurements, tags and fields (pure constants).

Two buckets (``InfluxSettings.raw_bucket`` and ``aggregate_bucket``; InfluxDB 1.8: database
``urbanpulse`` with retention policies ``raw`` and ``agg``):

* ``reading`` (raw bucket): tags :data:`READING_TAGS` plus the sensor's registry labels
  :data:`LABEL_TAGS`; fields :data:`READING_FIELDS`.
* ``aggregate`` (aggregate bucket): tags :data:`AGGREGATE_TAGS`; fields :data:`AGGREGATE_FIELDS`.
* ``alert`` (aggregate bucket): tags :data:`ALERT_TAGS`; fields :data:`ALERT_FIELDS`.
* ``kpi`` (aggregate bucket): tags :data:`KPI_TAGS`; fields :data:`KPI_FIELDS` (docs/kpis.md).

A reading's time is its observation time; an aggregate's the window start; an alert's the
episode start; an indicator's the start of its day or week. Tags plus time identify a point,
so a rewrite overwrites (docs/streams.md). The stream worker writes the first three
(``streams.points``, as line protocol), the indicator job ``kpi`` (``streams.kpis.points``); the
API, the dashboards and the benchmarks read them by these names only.
"""

from __future__ import annotations

READING_MEASUREMENT = "reading"
AGGREGATE_MEASUREMENT = "aggregate"
ALERT_MEASUREMENT = "alert"

PROBE_TAG = "probe"
"""Which probe of a quantity (``Reading.probe``): a tag only when set, so series of sensors
with one probe of each quantity stay as they were."""

READING_TAGS = ("tenant", "sensor_id", "quantity", PROBE_TAG)
"""The tags that decide a reading's series (with its time: the point); ``probe`` when set."""
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

AGGREGATE_TAGS = (
    "privacy",
    "tenant",
    "scope",
    "sensor_id",
    "district",
    "quantity",
    PROBE_TAG,
    "window",
)
"""``sensor_id`` for scope ``sensor``, ``district`` for scope ``district``; ``probe`` when the
sensor series has one (a district aggregate combines every probe of its sensors)."""
AGGREGATE_FIELDS = ("count", "mean", "min", "max", "last", "unit")

ALERT_TAGS = ("privacy", "tenant", "sensor_id", "rule", "quantity")
ALERT_FIELDS = ("state", "started_at", "ended_at", "value", "message")
ALERT_OPEN = "open"
"""The ``state`` of an alert episode that has not ended (else ``closed``)."""
STALE_RULE = "stale"
"""The ``rule`` tag of a stale-sensor alert: no reading for too long."""

KPI_MEASUREMENT = "kpi"
KPI_TAGS = ("tenant", "scope", "subject", "period")
"""``scope`` sensor, district or tenant; ``subject`` the sensor id, district or tenant it is
about; ``period`` day or week. With the period's start as time: one point per subject and
period, so the indicator job's recomputations overwrite."""
KPI_DOCUMENT_FIELD = "indicators"
"""Every indicator of the point as one JSON document (:class:`urbanpulse.kpi.Indicators`):
what a detail view, the monthly report and the job itself read."""
KPI_SUMMARY_FIELD = "summary"
"""The headline indicators as a small JSON document (``Indicators.summary_json``): what a list
of many subjects and periods reads, one field per point (docs/kpis.md, "Reading them fast")."""
KPI_NUMBER_FIELDS = (
    "score",
    "completeness",
    "uptime",
    "latency_p50_s",
    "latency_p95_s",
    "dead_letters",
    "since_last_s",
    "battery_pct",
    "reports",
    "expected",
)
"""The headline indicators again as numbers, for Flux and Grafana (``battery_pct`` and the
latencies only when known)."""
KPI_SKETCH_FIELD = "latency_sketch"
"""The delivery latencies as a mergeable sketch (JSON), from which weeks, districts and
tenants get their percentiles; read by the indicator job only."""
KPI_FIELDS = (
    KPI_DOCUMENT_FIELD,
    KPI_SUMMARY_FIELD,
    *KPI_NUMBER_FIELDS,
    "district",
    KPI_SKETCH_FIELD,
)
