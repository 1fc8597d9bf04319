"""Indicators as ``kpi`` points and back (pure; layout in urbanpulse/influx_layout.py).

Tags ``tenant``, ``scope``, ``subject``, ``period`` and the period's start as time: one point
per subject and period, so every recomputation overwrites it. Fields: the whole
:class:`~urbanpulse.kpi.Indicators` as JSON (``indicators``), its headline part as a small
JSON (``summary``, for lists), the headline numbers again for Flux and Grafana, the district,
and the latency sketch. A field is written only with a value
(InfluxDB has no null); the document always holds every indicator, nulls included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from influxdb_client import Point, WritePrecision

from streams.kpis.indicators import Result
from streams.kpis.sketch import LatencySketch
from urbanpulse.influx_layout import (
    KPI_DOCUMENT_FIELD,
    KPI_MEASUREMENT,
    KPI_NUMBER_FIELDS,
    KPI_SKETCH_FIELD,
    KPI_SUMMARY_FIELD,
)
from urbanpulse.kpi import Indicators

SubjectKey = tuple[str, str, str]  # (tenant, scope, subject)


def kpi_point(result: Result) -> Point:
    """The point of one subject's indicators over one period."""
    ind = result.indicators
    point = (
        Point(KPI_MEASUREMENT)
        .tag("tenant", ind.tenant)
        .tag("scope", ind.scope)
        .tag("subject", ind.subject)
        .tag("period", ind.period)
        .field(KPI_DOCUMENT_FIELD, ind.to_json())
        .field(KPI_SUMMARY_FIELD, ind.summary_json())
        .field(KPI_SKETCH_FIELD, result.sketch.to_json())
        .time(ind.start, WritePrecision.S)
    )
    for name in KPI_NUMBER_FIELDS:
        value = getattr(ind, name)
        if value is not None:
            point.field(name, float(value))
    if ind.district is not None:
        point.field("district", ind.district)
    return point


def results_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[SubjectKey, list[Result]]:
    """Stored results from rows of (tenant, scope, subject, _time, _field, _value).

    Only the ``indicators`` and ``latency_sketch`` fields are read; a subject may have several
    periods (e.g. the days of a week), oldest first.
    """
    documents: dict[tuple[SubjectKey, str], dict[str, str]] = {}
    for row in rows:
        key = (row["tenant"], row["scope"], row["subject"])
        documents.setdefault((key, str(row["_time"])), {})[row["_field"]] = row["_value"]
    out: dict[SubjectKey, list[Result]] = {}
    for (key, _), fields in sorted(documents.items()):
        if KPI_DOCUMENT_FIELD not in fields:
            continue
        out.setdefault(key, []).append(
            Result(
                indicators=Indicators.from_json(fields[KPI_DOCUMENT_FIELD]),
                sketch=LatencySketch.from_json(fields.get(KPI_SKETCH_FIELD, "")),
            )
        )
    for results in out.values():
        results.sort(key=lambda r: r.indicators.start)
    return out
