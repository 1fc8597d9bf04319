"""The indicators of a sensor, district or tenant over a day or week: the ``kpi`` document.

The indicator job (``urbanpulse kpis``, kpis/) computes them and writes one InfluxDB point per
subject and period (urbanpulse/influx_layout.py: measurement ``kpi``, the whole
:class:`Indicators` as JSON in the field ``indicators``); the API and the monthly report read
them back with :meth:`Indicators.from_json`. Definitions and formulas: docs/kpis.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from urbanpulse.model import UtcDatetime

Scope = Literal["sensor", "district", "tenant"]
Period = Literal["day", "week"]
IntervalSource = Literal["registry", "inferred", "default"]
SCOPES: tuple[Scope, ...] = ("sensor", "district", "tenant")
PERIODS: tuple[Period, ...] = ("day", "week")


class Indicators(BaseModel):
    """Every indicator of one subject (sensor, district, tenant) over one period (day, week)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant: str
    scope: Scope
    subject: str = Field(description="the sensor id, district id or tenant id")
    period: Period
    start: UtcDatetime = Field(description="the period's first instant (local midnight, UTC)")
    end: UtcDatetime = Field(description="the period's end (exclusive)")
    evaluated_at: UtcDatetime = Field(description="when the job computed this")
    complete: bool = Field(description="the period had ended when it was computed")
    district: str | None = Field(None, description="the sensor's district (registry), if any")
    sensors: int = Field(1, ge=0, description="sensors behind these indicators")
    sensors_reporting: int = Field(0, ge=0, description="of which with at least one reading")
    interval_s: float | None = Field(
        None, description="the sensor's reporting interval the expectation is computed from"
    )
    interval_source: IntervalSource | None = Field(
        None, description="registry; inferred (median gap of its reports); default setting"
    )
    interval_inferred: bool = Field(
        False, description="the interval is not the registry's (for a district or tenant: any)"
    )
    expected: int = Field(ge=0, description="reports expected in the period (so far)")
    reports: int = Field(ge=0, description="reports received: distinct observation times")
    slots: int = Field(ge=0, description="expected intervals with at least one report")
    readings: int = Field(ge=0, description="readings stored (one per quantity of a report)")
    data_readings: int = Field(
        0, ge=0, description="of which of what it measures (not device health or radio)"
    )
    completeness: float = Field(ge=0, description="reports / expected (may exceed 1)")
    uptime: float = Field(ge=0, le=1, description="slots / expected")
    latency_p50_s: float | None = Field(None, description="median of received_at - observed_at")
    latency_p95_s: float | None = Field(None, description="95th percentile of the same")
    flag_counts: dict[str, int] = Field(
        default_factory=dict, description="readings carrying each quality flag"
    )
    flag_shares: dict[str, float] = Field(
        default_factory=dict, description="flag_counts / readings, per flag"
    )
    flagged: int = Field(0, ge=0, description="data readings with at least one scored flag")
    dead_letters: int = Field(0, ge=0, description="messages or readings refused (dead letters)")
    dead_letter_reasons: dict[str, int] = Field(default_factory=dict)
    first_seen: UtcDatetime | None = Field(
        None, description="first reading the job knows of (carried over from earlier periods)"
    )
    last_reading_at: UtcDatetime | None = Field(
        None, description="observation time of the latest reading up to the period's end"
    )
    since_last_s: float | None = Field(
        None, description="from the latest reading to the period's end or evaluation, if sooner"
    )
    battery_pct: float | None = Field(
        None, description="latest battery level (sensor), the lowest of them (district, tenant)"
    )
    battery_at: UtcDatetime | None = Field(None, description="when that battery level was read")
    battery_low_sensors: int = Field(
        0, ge=0, description="sensors whose latest battery level is at or below battery_low_pct"
    )
    score: float | None = Field(None, description="the scorecard, 0-100 (docs/kpis.md)")
    components: dict[str, float] = Field(
        default_factory=dict, description="the scorecard's parts, each 0-1, before weighting"
    )

    def to_json(self) -> str:
        """The whole document, stored in the point's ``indicators`` field."""
        return self.model_dump_json()

    def summary_json(self) -> str:
        """The headline indicators (:data:`SUMMARY_FIELDS`, nulls left out), stored in the
        point's ``summary`` field: what a list of many subjects and periods reads."""
        return self.model_dump_json(include=set(SUMMARY_FIELDS), exclude_none=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Indicators:
        """Read a stored ``indicators`` document back."""
        return cls.model_validate_json(text)


SUMMARY_FIELDS = (
    "complete",
    "district",
    "interval_inferred",
    "expected",
    "reports",
    "readings",
    "completeness",
    "uptime",
    "latency_p50_s",
    "latency_p95_s",
    "flag_shares",
    "dead_letters",
    "since_last_s",
    "battery_pct",
    "score",
)
"""What :meth:`Indicators.summary_json` keeps: the indicators a council reads in a table, about
a third of the whole document (the subject, period and start are the point's tags and time)."""
