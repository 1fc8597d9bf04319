"""Days and weeks in the city's time zone, as UTC spans, and which of them a run computes (pure).

A day runs from local midnight to the next (23 or 25 hours when the clocks change); a week
from Monday's midnight to the next Monday's. A period is named by its local first day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from urbanpulse.kpi import Period


@dataclass(frozen=True, kw_only=True)
class PeriodSpan:
    """One day or week: its kind, its local first day and its UTC start and end."""

    period: Period
    first_day: date
    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` falls within [start, end)."""
        return self.start <= moment < self.end


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def day_span(day: date, tz: ZoneInfo) -> PeriodSpan:
    """The local day ``day``."""
    return PeriodSpan(
        period="day",
        first_day=day,
        start=_midnight(day, tz),
        end=_midnight(day + timedelta(days=1), tz),
    )


def week_span(day: date, tz: ZoneInfo) -> PeriodSpan:
    """The week (Monday to Sunday) that ``day`` falls in."""
    monday = day - timedelta(days=day.weekday())
    return PeriodSpan(
        period="week",
        first_day=monday,
        start=_midnight(monday, tz),
        end=_midnight(monday + timedelta(days=7), tz),
    )


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    """The local date of a moment."""
    return moment.astimezone(tz).date()


def days_to_compute(now: datetime, tz: ZoneInfo, since: date | None = None) -> list[date]:
    """Yesterday and today, or every day from ``since`` to today, oldest first."""
    today = local_day(now, tz)
    first = today - timedelta(days=1) if since is None else since
    if first > today:
        raise ValueError(f"{first} is in the future (today is {today} in {tz.key})")
    return [first + timedelta(days=n) for n in range((today - first).days + 1)]


def weeks_of(days: Iterable[date]) -> list[date]:
    """The Mondays of the weeks the days fall in, oldest first."""
    return sorted({d - timedelta(days=d.weekday()) for d in days})
