"""What the monthly report says, from the month's stored day indicators (pure).

A month is the days whose start (local midnight in ``kpis.timezone``) lies in it. Its numbers
pool the days as the indicator job pools sensors (docs/kpis.md): completeness is the month's
reports over its expected reports, the score the mean of the daily scores, each component the
mean of its daily values. The weakest sensors are ranked by the mean of their daily scores,
then by completeness, each with the part that pulled it down most. The report shows what the
open API shows: no battery level, no sensor the registry classes ``restricted`` or
``personal``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from statistics import fmean

from api.experiment_result import ExperimentAnswer
from urbanpulse.kpi import Indicators
from urbanpulse.scorecard import COMPONENTS

WORST = 10


@dataclass(frozen=True, kw_only=True)
class DayRow:
    """The tenant's indicators of one day."""

    day: date
    complete: bool
    score: float | None
    completeness: float
    uptime: float
    reports: int
    expected: int
    dead_letters: int
    latency_p95_s: float | None


@dataclass(frozen=True, kw_only=True)
class SensorMonth:
    """One sensor over the month."""

    sensor_id: str
    district: str | None
    days: int
    score: float | None
    completeness: float
    uptime: float
    dead_letters: int
    weakest: str | None


@dataclass(frozen=True, kw_only=True)
class MonthReport:
    """Everything the report's HTML and CSV files show."""

    tenant: str
    month: date  # its first day
    timezone: str
    generated_at: datetime
    days: list[DayRow]
    score: float | None
    completeness: float | None
    uptime: float | None
    components: dict[str, float]
    weights: dict[str, float]  # shares of their sum
    districts: list[tuple[str, float | None]]
    sensors: int
    worst: list[SensorMonth]
    experiments: list[ExperimentAnswer]

    @property
    def title_month(self) -> str:
        """``2026-11``."""
        return self.month.strftime("%Y-%m")


def _mean(values: Iterable[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return fmean(found) if found else None


def day_rows(days: Iterable[Indicators], zone_day: Mapping[datetime, date]) -> list[DayRow]:
    """The tenant's days, oldest first (``zone_day``: each start's local date)."""
    return [
        DayRow(
            day=zone_day[i.start],
            complete=i.complete,
            score=i.score,
            completeness=i.completeness,
            uptime=i.uptime,
            reports=i.reports,
            expected=i.expected,
            dead_letters=i.dead_letters,
            latency_p95_s=i.latency_p95_s,
        )
        for i in sorted(days, key=lambda i: i.start)
    ]


def sensor_months(days: Iterable[Indicators], limit: int | None = WORST) -> list[SensorMonth]:
    """The sensors over the month, weakest first (mean daily score, then completeness, id)."""
    by_sensor: dict[str, list[Indicators]] = defaultdict(list)
    for ind in days:
        by_sensor[ind.subject].append(ind)
    months = []
    for sensor_id, own in by_sensor.items():
        expected = sum(i.expected for i in own)
        parts = {
            name: fmean(values)
            for name in COMPONENTS
            if (values := [i.components[name] for i in own if name in i.components])
        }
        months.append(
            SensorMonth(
                sensor_id=sensor_id,
                district=own[-1].district,
                days=len(own),
                score=_mean(i.score for i in own),
                completeness=sum(i.reports for i in own) / expected if expected else 0.0,
                uptime=fmean(i.uptime for i in own),
                dead_letters=sum(i.dead_letters for i in own),
                weakest=min(parts, key=lambda n: parts[n]) if parts else None,
            )
        )
    months.sort(key=lambda m: (m.score is None, m.score or 0.0, m.completeness, m.sensor_id))
    return months[:limit] if limit is not None else months


def build_report(
    *,
    tenant: str,
    month: date,
    timezone: str,
    generated_at: datetime,
    tenant_days: Sequence[Indicators],
    district_days: Sequence[Indicators],
    sensor_days: Sequence[Indicators],
    zone_day: Mapping[datetime, date],
    weights: Mapping[str, float],
    experiments: Sequence[ExperimentAnswer],
    hidden: frozenset[tuple[str, str]] = frozenset(),
) -> MonthReport:
    """The month's report from its stored day indicators and its experiments' answers."""
    rows = day_rows(tenant_days, zone_day)
    expected = sum(r.expected for r in rows)
    by_district: dict[str, list[float | None]] = defaultdict(list)
    for ind in district_days:
        by_district[ind.subject].append(ind.score)
    total = sum(weights.values()) or 1.0
    shown = [s for s in sensor_days if (s.tenant, s.subject) not in hidden]
    return MonthReport(
        tenant=tenant,
        month=month,
        timezone=timezone,
        generated_at=generated_at,
        days=rows,
        score=_mean(r.score for r in rows),
        completeness=sum(r.reports for r in rows) / expected if expected else None,
        uptime=_mean(r.uptime for r in rows),
        components={
            name: fmean(values)
            for name in COMPONENTS
            if (values := [i.components[name] for i in tenant_days if name in i.components])
        },
        weights={name: weights[name] / total for name in COMPONENTS if name in weights},
        districts=sorted((d, _mean(scores)) for d, scores in by_district.items()),
        sensors=len({s.subject for s in shown}),
        worst=sensor_months(shown),
        experiments=list(experiments),
    )
