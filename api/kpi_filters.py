"""What ``/v1/kpis``, the experiments, the overview's scorecard and the monthly report ask the
store for, and the rows it answers (pure data, keyword-only like :mod:`api.filters`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple

from urbanpulse.kpi import Period, Scope

KpiDocument = Literal["summary", "indicators"]
"""Which JSON field of a ``kpi`` point to read: the headline ``summary`` (lists) or the whole
``indicators`` document (the scorecard's components, the report)."""


@dataclass(frozen=True, kw_only=True)
class KpiFilter:
    """Stored indicators of the periods that start in ``[start, stop)``."""

    start: datetime
    stop: datetime
    scope: Scope
    period: Period = "day"
    tenant: str | None = None
    subjects: tuple[str, ...] = ()  # sensor, district or tenant ids; empty: every subject
    document: KpiDocument = "summary"


class KpiRow(NamedTuple):
    """One stored ``kpi`` point: its tags, its period's start and one JSON field as stored.

    A named tuple, not a frozen dataclass: a month of a tenant's sensors is 15,000 rows, and a
    frozen dataclass's ``__init__`` alone costs tens of milliseconds for them (build it with
    keywords all the same)."""

    tenant: str
    scope: Scope
    subject: str
    period: Period
    time: str  # the period's start, RFC 3339 as InfluxDB wrote it (e.g. 2026-11-01T00:00:00Z)
    document: str  # the JSON field asked for, unparsed

    @property
    def start(self) -> datetime:
        """The period's start as a time."""
        return datetime.fromisoformat(self.time)


@dataclass(frozen=True, kw_only=True)
class HourlyFilter:
    """Hourly means (``aggregate``, window ``1h``, scope ``sensor``) of one quantity of some
    sensors of a tenant, windows starting in ``[start, stop)``; only open sensors."""

    start: datetime
    stop: datetime
    tenant: str
    quantity: str
    sensors: tuple[str, ...]
