"""Stored indicators to answer from: sensors, districts and a tenant over some days."""

from __future__ import annotations

from datetime import datetime, timedelta

from urbanpulse.kpi import Indicators, Period, Scope

DAY0 = datetime.fromisoformat("2026-11-20T00:00:00+00:00")


def indicators(
    subject: str,
    day: int = 0,
    *,
    tenant: str = "town",
    scope: Scope = "sensor",
    period: Period = "day",
    district: str | None = "centrum",
    score: float = 90.0,
    battery: float | None = 55.0,
    completeness: float = 0.95,
) -> Indicators:
    """A complete day (or week) of one subject, its numbers made up but consistent."""
    start = DAY0 + timedelta(days=day)
    length = timedelta(days=7 if period == "week" else 1)
    return Indicators(
        tenant=tenant,
        scope=scope,
        subject=subject,
        period=period,
        start=start,
        end=start + length,
        evaluated_at=start + length + timedelta(minutes=10),
        complete=True,
        district=district if scope == "sensor" else None,
        interval_s=300.0,
        interval_source="registry",
        expected=288,
        reports=round(288 * completeness),
        slots=round(288 * completeness),
        readings=3 * round(288 * completeness),
        data_readings=2 * round(288 * completeness),
        completeness=completeness,
        uptime=completeness,
        latency_p50_s=1.5,
        latency_p95_s=12.0,
        flag_counts={"gap": 2},
        flag_shares={"gap": 0.0023},
        flagged=2,
        dead_letters=1,
        dead_letter_reasons={"invalid_json": 1},
        last_reading_at=start + length - timedelta(minutes=5),
        since_last_s=300.0,
        battery_pct=battery,
        battery_at=start + length - timedelta(minutes=5) if battery is not None else None,
        score=score,
        components={"completeness": completeness, "uptime": completeness, "freshness": 1.0},
    )
