"""Flux query text and its parameters (pure).

User values never become Flux text. Every query refers to them as ``params.<name>``; the
values travel either as the API's ``extern`` parameters (InfluxDB 2.x) or, because InfluxDB 1.8
ignores ``extern`` (measured: "undefined identifier params"), as one ``params`` record of
literals rendered by :func:`literal`, which escapes everything a Flux string can terminate or
interpolate with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from streams.points import MEASUREMENT

ParamValue = str | int | float | bool | datetime


def literal(value: ParamValue) -> str:
    """Render a value as a Flux literal that can only ever be that one value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("Flux has no literal for NaN or infinity")
        return repr(value) if "." in repr(value) or "e" in repr(value) else f"{value}.0"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("times given to Flux must be timezone-aware")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
        return f'"{escaped}"'
    raise TypeError(f"no Flux literal for {type(value).__name__}")


def params_record(params: dict[str, ParamValue]) -> str:
    """The ``params = {...}`` line that stands in for ``extern`` parameters."""
    body = ", ".join(f"{name}: {literal(value)}" for name, value in sorted(params.items()))
    return f"params = {{{body}}}\n"


@dataclass(frozen=True)
class FluxQuery:
    """Flux text that reads its inputs from ``params``, and those inputs."""

    text: str
    params: dict[str, ParamValue]

    def inline(self) -> str:
        """The query as one self-contained Flux program (for InfluxDB 1.8)."""
        return params_record(self.params) + self.text


@dataclass(frozen=True)
class ObservationFilter:
    """What a client asked for: one sensor (or all), a quantity, a time range, a page."""

    start: datetime
    stop: datetime
    limit: int
    sensor_id: str | None = None
    tenant: str | None = None
    quantity: str | None = None
    after: tuple[datetime, str, str, str] | None = None  # (time, tenant, sensor_id, quantity)


def observations_query(bucket: str, flt: ObservationFilter) -> FluxQuery:
    """Raw readings in a range, one row per reading, ordered by time then series (keyset)."""
    after_time, after_tenant, after_sensor, after_quantity = flt.after or (flt.start, "", "", "")
    text = f"""
from(bucket: params.bucket)
  |> range(start: params.start, stop: params.stop)
  |> filter(fn: (r) => r._measurement == "{MEASUREMENT}")
  |> filter(fn: (r) => params.sensor_id == "" or r.sensor_id == params.sensor_id)
  |> filter(fn: (r) => params.tenant == "" or r.tenant == params.tenant)
  |> filter(fn: (r) => params.quantity == "" or r.quantity == params.quantity)
  |> filter(fn: (r) => not params.has_after or r._time > params.after_time or
       (r._time == params.after_time and (r.tenant > params.after_tenant or
        (r.tenant == params.after_tenant and (r.sensor_id > params.after_sensor or
         (r.sensor_id == params.after_sensor and r.quantity > params.after_quantity))))))
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> sort(columns: ["_time", "tenant", "sensor_id", "quantity"])
  |> limit(n: params.limit)
"""
    return FluxQuery(
        text,
        {
            "bucket": bucket,
            "start": flt.start,
            "stop": flt.stop,
            "sensor_id": flt.sensor_id or "",
            "tenant": flt.tenant or "",
            "quantity": flt.quantity or "",
            "has_after": flt.after is not None,
            "after_time": after_time,
            "after_tenant": after_tenant,
            "after_sensor": after_sensor,
            "after_quantity": after_quantity,
            "limit": flt.limit,
        },
    )


def sensors_query(bucket: str, start: datetime, tenant: str | None) -> FluxQuery:
    """The latest value, unit and position of every series since ``start``."""
    text = f"""
from(bucket: params.bucket)
  |> range(start: params.start)
  |> filter(fn: (r) => r._measurement == "{MEASUREMENT}")
  |> filter(fn: (r) => params.tenant == "" or r.tenant == params.tenant)
  |> filter(fn: (r) => r._field == "value" or r._field == "unit" or r._field == "lat" or
       r._field == "lon")
  |> last()
  |> keep(columns: ["_time", "_value", "_field", "tenant", "sensor_id", "quantity"])
"""
    return FluxQuery(text, {"bucket": bucket, "start": start, "tenant": tenant or ""})
