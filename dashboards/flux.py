"""Flux text of the boards' queries (pure string building, Flux 0.65 compatible).

The queries run on InfluxDB 1.8's Flux 0.65 as well as on InfluxDB 2.7, so they use only
long-standing functions (no ``schema`` package, no time arithmetic). Grafana fills in
``v.timeRangeStart``, ``v.timeRangeStop`` and ``v.windowPeriod``; dashboard variables
(``${tenant}``, ``${district:regex}``...) are substituted as text before the query is sent,
so each one sits inside a string or regex literal. ``v.defaultBucket`` is the default bucket of
the query's data source: raw queries run on the raw data source, aggregate and alert queries
on the aggregate one (see ``dashboards.datasources``). Values are never user input: the variables'
options come from tag values and fixed lists.

Names the platform agrees on are never written here as bare strings: a quantity goes through
:func:`quantity` (checked against ``urbanpulse.quantities``), a window through :func:`window`
(the stream worker's window sizes), and measurements, tags and fields come from
``urbanpulse.influx_layout`` through :func:`tag` and :func:`field`, so a board cannot ask for
something the platform never stores without failing when it is generated.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from urbanpulse.influx_layout import (
    AGGREGATE_FIELDS,
    AGGREGATE_MEASUREMENT,
    AGGREGATE_TAGS,
    ALERT_FIELDS,
    ALERT_MEASUREMENT,
    ALERT_TAGS,
    KPI_FIELDS,
    KPI_MEASUREMENT,
    KPI_TAGS,
    LABEL_TAGS,
    READING_FIELDS,
    READING_MEASUREMENT,
    READING_TAGS,
)
from urbanpulse.quantities import privacy_of, require
from urbanpulse.settings import StreamsSettings

BUCKET = "v.defaultBucket"
RANGE = "|> range(start: v.timeRangeStart, stop: v.timeRangeStop)"

TAGS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        READING_MEASUREMENT: READING_TAGS + LABEL_TAGS,
        AGGREGATE_MEASUREMENT: AGGREGATE_TAGS,
        ALERT_MEASUREMENT: ALERT_TAGS,
        KPI_MEASUREMENT: KPI_TAGS,
    }
)
"""The tags of each measurement (``urbanpulse.influx_layout``)."""
FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        READING_MEASUREMENT: READING_FIELDS,
        AGGREGATE_MEASUREMENT: AGGREGATE_FIELDS,
        ALERT_MEASUREMENT: ALERT_FIELDS,
        KPI_MEASUREMENT: KPI_FIELDS,
    }
)
"""The fields of each measurement (``urbanpulse.influx_layout``)."""
WINDOWS: tuple[str, ...] = tuple(StreamsSettings().windows)
"""The aggregate windows the boards show: the stream worker's default window sizes."""


def quantity(name: str) -> str:
    """The Flux string literal of a quantity the platform stores: ``quantity("pm2_5")``.

    Raises ValueError for a name that is not a canonical quantity (``urbanpulse.quantities``)
    and for a personal one, which ingest drops: a panel asking for either would stay empty.
    """
    require(name)
    if privacy_of(name) == "personal":
        raise ValueError(f"{name!r} is personal data: dropped at ingest, never stored")
    return f'"{name}"'


def window(name: str) -> str:
    """The Flux string literal of an aggregate window size the stream worker writes."""
    if name not in WINDOWS:
        raise ValueError(f"{name!r} is not an aggregate window of the stream worker {WINDOWS}")
    return f'"{name}"'


def tag(measurement: str, name: str) -> str:
    """``name`` if it is a tag of ``measurement`` (influx_layout), else ValueError."""
    if name not in TAGS[measurement]:
        raise ValueError(f"{name!r} is not a tag of {measurement!r} (urbanpulse.influx_layout)")
    return name


def field(measurement: str, name: str) -> str:
    """``name`` if it is a field of ``measurement`` (influx_layout), else ValueError."""
    if name not in FIELDS[measurement]:
        raise ValueError(f"{name!r} is not a field of {measurement!r} (urbanpulse.influx_layout)")
    return name


TENANT = '"${tenant}"'
"""The board's tenant variable, as a Flux string literal."""


def _conditions(parts: list[str]) -> str:
    return " and ".join(parts)


def _fields(measurement: str, fields: tuple[str, ...]) -> str:
    checked = [f'r._field == "{field(measurement, f)}"' for f in fields]
    return checked[0] if len(checked) == 1 else "(" + " or ".join(checked) + ")"


def _select(measurement: str, parts: list[str]) -> str:
    head = [f'r._measurement == "{measurement}"', f"r.{tag(measurement, 'tenant')} == {TENANT}"]
    return f"from(bucket: {BUCKET})\n  {RANGE}\n  |> filter(fn: (r) => {_conditions(head + parts)})"


def raw(quantity: str | None, fields: tuple[str, ...] = ("value",), extra: str = "") -> str:
    """Raw readings of the board's tenant: one quantity literal (or all), the given fields."""
    parts = []
    if quantity is not None:
        parts.append(f"r.{tag(READING_MEASUREMENT, 'quantity')} == {quantity}")
    parts.append(_fields(READING_MEASUREMENT, fields))
    if extra:
        parts.append(extra)
    return _select(READING_MEASUREMENT, parts)


def aggregate(
    scope: str, quantity: str, window: str, fields: tuple[str, ...] = ("mean",), extra: str = ""
) -> str:
    """Window aggregates of the board's tenant for one scope, quantity and window literal."""
    if scope not in ("sensor", "district"):
        raise ValueError(f"no aggregate scope {scope!r}")
    parts = [
        f'r.{tag(AGGREGATE_MEASUREMENT, "scope")} == "{scope}"',
        f"r.{tag(AGGREGATE_MEASUREMENT, 'quantity')} == {quantity}",
        f"r.{tag(AGGREGATE_MEASUREMENT, 'window')} == {window}",
        _fields(AGGREGATE_MEASUREMENT, fields),
    ]
    if extra:
        parts.append(extra)
    return _select(AGGREGATE_MEASUREMENT, parts)


def kpi(scope: str, fields: tuple[str, ...], period: str = "day", extra: str = "") -> str:
    """Stored indicators of the board's tenant (the indicator job's ``kpi`` points, one per
    subject and period, time = the period's start) for one scope and period."""
    if scope not in ("sensor", "district", "tenant") or period not in ("day", "week"):
        raise ValueError(f"no indicators of scope {scope!r} per {period!r} (docs/kpis.md)")
    parts = [
        f'r.{tag(KPI_MEASUREMENT, "scope")} == "{scope}"',
        f'r.{tag(KPI_MEASUREMENT, "period")} == "{period}"',
        _fields(KPI_MEASUREMENT, fields),
    ]
    if extra:
        parts.append(extra)
    return _select(KPI_MEASUREMENT, parts)


def alerts(start: str = "-30d") -> str:
    """Alert episodes of the board's tenant, pivoted to one row per episode.

    Alerts are looked up over a fixed span (``start``) rather than the dashboard's range: an
    episode's time is its start, and one that opened before the range may still be open.
    """
    return (
        f"from(bucket: {BUCKET})\n  |> range(start: {start})\n"
        f"  |> filter(fn: (r) => "
        f'r._measurement == "{ALERT_MEASUREMENT}" and '
        f"r.{tag(ALERT_MEASUREMENT, 'tenant')} == {TENANT})\n"
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
    )


def open_alerts(start: str = "-30d") -> str:
    """The latest episode of each (sensor, rule, quantity) when it is still open."""
    episode = ", ".join(f'"{tag(ALERT_MEASUREMENT, t)}"' for t in ("sensor_id", "rule", "quantity"))
    state = field(ALERT_MEASUREMENT, "state")
    return (
        alerts(start)
        + f"\n  |> group(columns: [{episode}])"
        + f'\n  |> last(column: "{state}")'
        + f'\n  |> filter(fn: (r) => r.{state} == "open")'
        + "\n  |> group()"
    )


def tag_values(measurement: str, name: str, predicate: str = "") -> str:
    """Distinct values of one tag in the time range: a template variable's options."""
    parts = [f'r._measurement == "{measurement}"']
    if predicate:
        parts.append(predicate)
    column = tag(measurement, name)
    return (
        f"from(bucket: {BUCKET})\n  {RANGE}\n"
        f"  |> filter(fn: (r) => {_conditions(parts)})\n"
        f'  |> keep(columns: ["{column}"])\n'
        f'  |> distinct(column: "{column}")\n'
        "  |> group()\n"
        f'  |> sort(columns: ["_value"])'
    )


def columns(measurement: str, *names: str) -> str:
    """A Flux column list of Flux's own columns (``_time``...) and the measurement's tags/fields."""
    for name in names:
        if not name.startswith("_") and name not in TAGS[measurement] + FIELDS[measurement]:
            raise ValueError(f"{name!r} is not a column of {measurement!r} (influx_layout)")
    return "[" + ", ".join(f'"{name}"' for name in names) + "]"
