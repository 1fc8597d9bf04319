"""Small builders for the indicator tests: a UTC day, observations on a grid."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from streams.kpis.indicators import Evaluation, SensorObservations, to_us
from streams.kpis.periods import PeriodSpan, day_span
from urbanpulse.scorecard import ScoreRules

DAY = date(2026, 11, 25)
UTC_ZONE = ZoneInfo("UTC")


def span(day: date = DAY) -> PeriodSpan:
    return day_span(day, UTC_ZONE)


def at(hours: float, day: date = DAY) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=hours)


def evaluation(now: datetime, the_span: PeriodSpan | None = None) -> Evaluation:
    return Evaluation(
        span=the_span or span(), now=now, default_interval_s=300.0, rules=ScoreRules()
    )


def on_grid(
    *,
    first: datetime,
    interval_s: float,
    count: int,
    skip: set[int] = frozenset(),  # type: ignore[assignment]
    quantities: tuple[str, ...] = ("noise_level",),
    latency_s: float = 0.0,
    tenant: str = "t",
    sensor_id: str = "s",
) -> SensorObservations:
    """Reports every ``interval_s`` from ``first``, ``count`` ticks, leaving out ``skip``."""
    obs = SensorObservations(tenant=tenant, sensor_id=sensor_id)
    for k in range(count):
        if k in skip:
            continue
        moment = to_us(first + timedelta(seconds=k * interval_s))
        for quantity in quantities:
            obs.add_reading(moment, moment + round(latency_s * 1_000_000), quantity)
    return obs
