"""Flux of the indicator and experiment reads (pure): :mod:`api.kpi_filters` as Flux.

As everywhere in the API, values appear only as ``params.<name>`` and reach InfluxDB as
escaped literals or ``extern`` parameters (:class:`api.flux.FluxQuery`); tag tests stand in
the first ``filter`` so that InfluxDB 1.8 pushes them down to its index, and sensors are
``or``-ed equalities (1.8 does not push ``contains`` down).

The indicator query reads one JSON field per point and nothing else: benchmarks/kpi_query.py
measured the ``summary`` field of 15,000 sensor-days at 115 ms, against 610 ms for the same
numbers as fields pivoted into rows (docs/kpis.md, "Reading them fast").
"""

from __future__ import annotations

from api.flux import FluxQuery, ParamValue
from api.kpi_filters import HourlyFilter, KpiFilter
from urbanpulse.influx_layout import (
    AGGREGATE_MEASUREMENT,
    KPI_DOCUMENT_FIELD,
    KPI_MEASUREMENT,
    KPI_SUMMARY_FIELD,
)

FIELDS = {"summary": KPI_SUMMARY_FIELD, "indicators": KPI_DOCUMENT_FIELD}
_AND = " and\n       "


def _one_of(column: str, name: str, values: tuple[str, ...], params: dict[str, ParamValue]) -> str:
    """``column`` equals one of ``values``: ``or``-ed equalities over ``params.<name>_<i>``."""
    names = [f"{name}_{i}" for i in range(len(values))]
    params |= dict(zip(names, values, strict=True))
    return "(" + " or ".join(f"r.{column} == params.{n}" for n in names) + ")"


def kpi_query(bucket: str, flt: KpiFilter) -> FluxQuery:
    """One JSON field of every ``kpi`` point the filter names: ``_time``, tags, ``_value``."""
    params: dict[str, ParamValue] = {
        "bucket": bucket,
        "start": flt.start,
        "stop": flt.stop,
        "scope": flt.scope,
        "period": flt.period,
    }
    tags = [
        f'r._measurement == "{KPI_MEASUREMENT}"',
        f'r._field == "{FIELDS[flt.document]}"',
        "r.scope == params.scope",
        "r.period == params.period",
    ]
    if flt.tenant:
        params["tenant"] = flt.tenant
        tags.append("r.tenant == params.tenant")
    if flt.subjects:
        tags.append(_one_of("subject", "subject", flt.subjects, params))
    text = f"""
from(bucket: params.bucket)
  |> range(start: params.start, stop: params.stop)
  |> filter(fn: (r) => {_AND.join(tags)})
  |> filter(fn: (r) => r._time < params.stop)
  |> keep(columns: ["_time", "tenant", "subject", "_value"])
"""
    return FluxQuery(text, params)


def hourly_query(bucket: str, flt: HourlyFilter) -> FluxQuery:
    """The ``mean`` and ``count`` of the sensors' hourly aggregates, one row per field.

    Only open sensors: a point tagged ``privacy`` other than ``open`` is left out, as the open
    aggregates route does (points without the tag are older than it and stay in).
    """
    if not flt.sensors:
        raise ValueError("hourly means of no sensor: do not ask")
    params: dict[str, ParamValue] = {
        "bucket": bucket,
        "start": flt.start,
        "stop": flt.stop,
        "tenant": flt.tenant,
        "quantity": flt.quantity,
    }
    tags = [
        f'r._measurement == "{AGGREGATE_MEASUREMENT}"',
        '(r._field == "mean" or r._field == "count")',
        'r.scope == "sensor"',
        'r["window"] == "1h"',
        "r.tenant == params.tenant",
        "r.quantity == params.quantity",
        _one_of("sensor_id", "sensor", flt.sensors, params),
    ]
    text = f"""
from(bucket: params.bucket)
  |> range(start: params.start, stop: params.stop)
  |> filter(fn: (r) => {_AND.join(tags)})
  |> filter(fn: (r) => r._time < params.stop and not (exists r.privacy and r.privacy != "open"))
  |> keep(columns: ["_time", "sensor_id", "_field", "_value"])
"""
    return FluxQuery(text, params)
