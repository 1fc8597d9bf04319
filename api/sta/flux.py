"""Flux for SensorThings Observations: a page, or the count, of raw readings (pure).

The whole ``$filter`` runs in Flux, so ``$top``/``$skip`` pages and ``@iot.count`` are exact.
It is safe because the filter tree (:mod:`api.sta.query`) holds only fixed property names and
operators, which map to constant Flux text here, and typed values, which travel as
``params.<name>`` like every other user value (:mod:`api.flux`; InfluxDB 1.8 ignores
``extern``, so they are rendered by :func:`api.flux.literal`). The phenomenonTime bounds of
the filter narrow the ``range``; the route bounds that range, so no request scans everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from api.flux import FluxQuery, ParamValue, _Where
from api.params import BadQuery
from api.sta.query import Comparison, Expr, OrderKey
from urbanpulse.influx_layout import READING_MEASUREMENT

COLUMN = {"phenomenonTime": "_time", "result": "value"}
FLUX_OP = {"eq": "==", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
# After the asked order, these make it total, so $skip pages never overlap or skip a row.
TIE_BREAK = ("_time", "tenant", "sensor_id", "quantity")
ORDERABLE = ("phenomenonTime", "result")


@dataclass(frozen=True)
class ObservationQuery:
    """Readings asked for: a bounded range, an optional series, a filter, an order, a page."""

    start: datetime
    stop: datetime
    limit: int
    offset: int = 0
    tenant: str | None = None
    sensor_id: str | None = None
    quantity: str | None = None
    allowed: tuple[str, ...] = ()  # published quantities, when no one quantity is named
    filter: Expr | None = None
    order: tuple[OrderKey, ...] = ()


def sort_spec(order: tuple[OrderKey, ...]) -> tuple[tuple[str, ...], bool]:
    """Flux sort columns and direction; Flux sorts all columns one way, so mixed is a 400."""
    if len({key.desc for key in order}) > 1:
        raise BadQuery("$orderby: all properties must sort the same way (all asc or all desc)")
    columns = [COLUMN[key.prop] for key in order]
    columns += [c for c in TIE_BREAK if c not in columns]
    return tuple(columns), bool(order and order[0].desc)


def predicate(expr: Expr, params: dict[str, ParamValue]) -> str:
    """Flux boolean text of a filter tree; each value becomes a new ``params.f<n>``."""
    if isinstance(expr, Comparison):
        name = f"f{sum(1 for k in params if k.startswith('f'))}"
        params[name] = expr.value
        return f"r.{COLUMN[expr.prop]} {FLUX_OP[expr.op]} params.{name}"
    left, right = predicate(expr.left, params), predicate(expr.right, params)
    return f"({left} {expr.op} {right})"


def _selected(bucket: str, q: ObservationQuery, extra: dict[str, ParamValue]) -> tuple[str, _Where]:
    base: dict[str, ParamValue] = {"bucket": bucket, "start": q.start, "stop": q.stop}
    where = _Where(base | extra)
    where.equal("tenant", q.tenant)
    where.equal("sensor_id", q.sensor_id)
    where.open_sensors()  # a sensor the registry calls restricted or personal is never shown
    if q.quantity:
        where.equal("quantity", q.quantity)
    else:
        where.quantity_in(q.allowed)
    filtered = ""
    if q.filter is not None:
        filtered = f"  |> filter(fn: (r) => {predicate(q.filter, where.params)})\n"
    text = f"""
from(bucket: params.bucket)
  |> range(start: params.start, stop: params.stop)
  |> filter(fn: (r) => r._measurement == "{READING_MEASUREMENT}" and
       (r._field == "value" or r._field == "lat" or r._field == "lon" or
        r._field == "quality_flags"))
{where.filter()}  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
{filtered}  |> group()
"""
    return text, where


def observations_page_query(bucket: str, q: ObservationQuery) -> FluxQuery:
    """One page of readings in the asked order (sort, then ``limit`` with ``offset``)."""
    columns, desc = sort_spec(q.order)
    text, where = _selected(bucket, q, {"limit": q.limit, "offset": q.offset, "desc": desc})
    names = ", ".join(f'"{c}"' for c in columns)  # constants of COLUMN / TIE_BREAK only
    text += f"""  |> sort(columns: [{names}], desc: params.desc)
  |> limit(n: params.limit, offset: params.offset)
"""
    return FluxQuery(text, where.params)


def observations_count_query(bucket: str, q: ObservationQuery) -> FluxQuery:
    """How many readings match (for ``@iot.count``): one row with the count in ``value``."""
    text, where = _selected(bucket, q, {})
    return FluxQuery(text + '  |> count(column: "value")\n', where.params)
