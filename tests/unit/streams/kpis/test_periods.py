"""Days and weeks in the city's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from streams.kpis.periods import day_span, days_to_compute, week_span, weeks_of

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def test_a_local_day_runs_from_local_midnight_and_lasts_23_hours_when_clocks_go_forward() -> None:
    spring = day_span(date(2026, 3, 29), AMSTERDAM)
    assert spring.start == datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert (spring.end - spring.start).total_seconds() == 23 * 3600
    autumn = day_span(date(2026, 10, 25), AMSTERDAM)
    assert (autumn.end - autumn.start).total_seconds() == 25 * 3600


def test_a_week_starts_on_monday() -> None:
    week = week_span(date(2026, 11, 27), ZoneInfo("UTC"))  # a Friday
    assert (week.first_day, week.period) == (date(2026, 11, 23), "week")
    assert week.end == datetime(2026, 11, 30, tzinfo=UTC)
    assert weeks_of([date(2026, 11, 22), date(2026, 11, 23), date(2026, 11, 24)]) == [
        date(2026, 11, 16),
        date(2026, 11, 23),
    ]


def test_a_run_computes_yesterday_and_today_or_a_backfill() -> None:
    now = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)  # already the 28th in Amsterdam
    assert days_to_compute(now, AMSTERDAM) == [date(2026, 11, 27), date(2026, 11, 28)]
    assert len(days_to_compute(now, ZoneInfo("UTC"), date(2026, 11, 1))) == 27
    with pytest.raises(ValueError, match="future"):
        days_to_compute(now, ZoneInfo("UTC"), date(2026, 12, 1))
