"""Gathering one month of a tenant: its stored day indicators and its experiments' answers
(the report's only I/O besides writing its files)."""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from api.experiment_result import evaluate
from api.kpi_filters import KpiFilter
from api.registry_view import RegistrySnapshot
from api.report.model import MonthReport, build_report
from api.store import Store
from urbanpulse.kpi import Indicators, Scope
from urbanpulse.settings import Settings

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_span(month: str, timezone: str) -> tuple[date, datetime, datetime]:
    """``YYYY-MM`` → its first day, and its start and end (local midnights, as aware times);
    ValueError for anything else."""
    found = MONTH.match(month)
    if found is None:
        raise ValueError(f"a month is YYYY-MM, e.g. 2026-11; got {month!r}")
    year, number = int(found.group(1)), int(found.group(2))
    zone = ZoneInfo(timezone)
    first = date(year, number, 1)
    following = date(year + number // 12, number % 12 + 1, 1)
    start = datetime(first.year, first.month, 1, tzinfo=zone)
    end = datetime(following.year, following.month, 1, tzinfo=zone)
    return first, start, end


def collect(
    store: Store,
    snapshot: RegistrySnapshot,
    settings: Settings,
    *,
    tenant: str,
    month: str,
    now: datetime,
) -> MonthReport:
    """The report of ``tenant``'s ``month`` as the stored indicators say now; experiments as
    of the month's end (or now, for the running month)."""
    zone = settings.kpis.timezone
    first, start, end = month_span(month, zone)

    def days(scope: Scope) -> list[Indicators]:
        rows = store.kpis(
            KpiFilter(start=start, stop=end, scope=scope, tenant=tenant, document="indicators")
        )
        return [Indicators.from_json(row.document) for row in rows]

    tenant_days, district_days, sensor_days = days("tenant"), days("district"), days("sensor")
    local = ZoneInfo(zone)
    as_of = min(now, end)
    experiments = [
        evaluate(
            experiment,
            snapshot.sensors,
            store,
            now=as_of,
            default_interval_s=settings.streams.expected_interval_s,
        )
        for _, experiment in sorted(snapshot.experiments.items())
        if experiment.tenant == tenant
    ]
    return build_report(
        tenant=tenant,
        month=first,
        timezone=zone,
        generated_at=now,
        tenant_days=tenant_days,
        district_days=district_days,
        sensor_days=sensor_days,
        zone_day={i.start: i.start.astimezone(local).date() for i in tenant_days},
        weights=settings.kpis.weights.model_dump(),
        experiments=experiments,
        hidden=snapshot.hidden(),
    )
