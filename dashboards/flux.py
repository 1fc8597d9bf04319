"""Flux text of the boards' queries (pure string building, Flux 0.65 compatible).

The queries run on InfluxDB 1.8's Flux 0.65 as well as on InfluxDB 2.7, so they use only
long-standing functions (no ``schema`` package, no time arithmetic). Grafana fills in
``v.timeRangeStart``, ``v.timeRangeStop`` and ``v.windowPeriod``; dashboard variables
(``${tenant}``, ``${district:regex}``...) are substituted as text before the query is sent,
so each one sits inside a string or regex literal. ``v.defaultBucket`` is the default bucket of
the query's data source: raw queries run on the raw data source, aggregate and alert queries
on the aggregate one (see ``dashboards.datasources``). Values are never user input: the variables'
options come from tag values and fixed lists.
"""

from __future__ import annotations

from urbanpulse.influx_layout import AGGREGATE_MEASUREMENT, ALERT_MEASUREMENT, READING_MEASUREMENT

BUCKET = "v.defaultBucket"
RANGE = "|> range(start: v.timeRangeStart, stop: v.timeRangeStop)"
TENANT = '"${tenant}"'


def _conditions(parts: list[str]) -> str:
    return " and ".join(parts)


def raw(quantity: str | None, fields: tuple[str, ...] = ("value",), extra: str = "") -> str:
    """Raw readings of the board's tenant: one quantity (or all), the given fields."""
    parts = [f'r._measurement == "{READING_MEASUREMENT}"', f"r.tenant == {TENANT}"]
    if quantity is not None:
        parts.append(f"r.quantity == {quantity}")
    if len(fields) == 1:
        parts.append(f'r._field == "{fields[0]}"')
    else:
        parts.append("(" + " or ".join(f'r._field == "{f}"' for f in fields) + ")")
    if extra:
        parts.append(extra)
    return f"from(bucket: {BUCKET})\n  {RANGE}\n  |> filter(fn: (r) => {_conditions(parts)})"


def aggregate(
    scope: str, quantity: str, window: str, fields: tuple[str, ...] = ("mean",), extra: str = ""
) -> str:
    """Window aggregates of the board's tenant for one scope, quantity and window size."""
    parts = [
        f'r._measurement == "{AGGREGATE_MEASUREMENT}"',
        f"r.tenant == {TENANT}",
        f'r.scope == "{scope}"',
        f"r.quantity == {quantity}",
        f"r.window == {window}",
    ]
    if len(fields) == 1:
        parts.append(f'r._field == "{fields[0]}"')
    else:
        parts.append("(" + " or ".join(f'r._field == "{f}"' for f in fields) + ")")
    if extra:
        parts.append(extra)
    return f"from(bucket: {BUCKET})\n  {RANGE}\n  |> filter(fn: (r) => {_conditions(parts)})"


def alerts(start: str = "-30d") -> str:
    """Alert episodes of the board's tenant, pivoted to one row per episode.

    Alerts are looked up over a fixed span (``start``) rather than the dashboard's range: an
    episode's time is its start, and one that opened before the range may still be open.
    """
    return (
        f"from(bucket: {BUCKET})\n  |> range(start: {start})\n"
        f"  |> filter(fn: (r) => "
        f'r._measurement == "{ALERT_MEASUREMENT}" and r.tenant == {TENANT})\n'
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
    )


def open_alerts(start: str = "-30d") -> str:
    """The latest episode of each (sensor, rule, quantity) when it is still open."""
    return (
        alerts(start)
        + '\n  |> group(columns: ["sensor_id", "rule", "quantity"])'
        + '\n  |> last(column: "state")'
        + '\n  |> filter(fn: (r) => r.state == "open")'
        + "\n  |> group()"
    )


def tag_values(measurement: str, tag: str, predicate: str = "") -> str:
    """Distinct values of one tag in the time range: a template variable's options."""
    parts = [f'r._measurement == "{measurement}"']
    if predicate:
        parts.append(predicate)
    return (
        f"from(bucket: {BUCKET})\n  {RANGE}\n"
        f"  |> filter(fn: (r) => {_conditions(parts)})\n"
        f'  |> keep(columns: ["{tag}"])\n'
        f'  |> distinct(column: "{tag}")\n'
        "  |> group()\n"
        f'  |> sort(columns: ["_value"])'
    )


def q(name: str) -> str:
    """A Flux string literal of a fixed name (quantity, window): ``"pm2_5"``."""
    return f'"{name}"'
