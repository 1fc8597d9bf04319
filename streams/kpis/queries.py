"""The indicator job's Flux queries (pure; values only through :func:`urbanpulse.flux.literal`).

Each asks one field of one measurement over one span and keeps only the columns the job
reads, so InfluxDB 1.8 filters on its index (literal comparisons of tags and ``_field``) and
sends as little as it can. The ``tenant`` filter is left out when every tenant is computed.
"""

from __future__ import annotations

from datetime import datetime

from urbanpulse.flux import literal
from urbanpulse.influx_layout import (
    KPI_DOCUMENT_FIELD,
    KPI_MEASUREMENT,
    KPI_SKETCH_FIELD,
    READING_MEASUREMENT,
)
from urbanpulse.kpi import Period, Scope


def _tenant(tenant: str | None) -> str:
    return "" if tenant is None else f" and r.tenant == {literal(tenant)}"


def _range(start: datetime, stop: datetime) -> str:
    return f"range(start: {literal(start)}, stop: {literal(stop)})"


def received_query(bucket: str, start: datetime, stop: datetime, tenant: str | None) -> str:
    """Every stored reading's receipt time (``_time``: its observation), by sensor and quantity."""
    return (
        f"from(bucket: {literal(bucket)})\n"
        f"  |> {_range(start, stop)}\n"
        f"  |> filter(fn: (r) => r._measurement == {literal(READING_MEASUREMENT)} and "
        f'r._field == "received_at"{_tenant(tenant)})\n'
        '  |> keep(columns: ["_time", "tenant", "sensor_id", "quantity", "_value"])\n'
    )


def flags_query(bucket: str, start: datetime, stop: datetime, tenant: str | None) -> str:
    """The quality flags of every stored reading that has any."""
    return (
        f"from(bucket: {literal(bucket)})\n"
        f"  |> {_range(start, stop)}\n"
        f"  |> filter(fn: (r) => r._measurement == {literal(READING_MEASUREMENT)} and "
        f'r._field == "quality_flags"{_tenant(tenant)})\n'
        '  |> filter(fn: (r) => r._value != "")\n'
        '  |> keep(columns: ["_time", "tenant", "sensor_id", "quantity", "_value"])\n'
    )


def battery_query(bucket: str, start: datetime, stop: datetime, tenant: str | None) -> str:
    """Each sensor's latest battery level in the span."""
    return (
        f"from(bucket: {literal(bucket)})\n"
        f"  |> {_range(start, stop)}\n"
        f"  |> filter(fn: (r) => r._measurement == {literal(READING_MEASUREMENT)} and "
        f'r._field == "value" and r.quantity == "battery_level"{_tenant(tenant)})\n'
        "  |> last()\n"
        '  |> keep(columns: ["_time", "tenant", "sensor_id", "_value"])\n'
    )


def stored_query(
    bucket: str,
    start: datetime,
    stop: datetime,
    *,
    period: Period,
    scope: Scope | None,
    tenant: str | None,
) -> str:
    """The stored indicator documents and latency sketches of periods starting in the span."""
    scope_test = "" if scope is None else f" and r.scope == {literal(scope)}"
    return (
        f"from(bucket: {literal(bucket)})\n"
        f"  |> {_range(start, stop)}\n"
        f"  |> filter(fn: (r) => r._measurement == {literal(KPI_MEASUREMENT)} and "
        f"r.period == {literal(period)}{scope_test}{_tenant(tenant)} and "
        f"(r._field == {literal(KPI_DOCUMENT_FIELD)} or r._field == {literal(KPI_SKETCH_FIELD)}))\n"
        '  |> keep(columns: ["_time", "tenant", "scope", "subject", "_field", "_value"])\n'
    )
