"""Indicator maths: from what a sensor delivered in a period to its indicators and score (pure).

Terms (docs/kpis.md has the formulas):

* a *report* is what a sensor sent for one observation time: its readings sharing that time
  (one per quantity). Reports received = distinct observation times stored.
* the sensor is *expected* from the period's start if it was known before (an earlier
  period's indicators) or has never reported; otherwise from its first report. Until the
  period's end, or now if sooner.
* *slots* are the sensor's reporting intervals, on its own grid: anchored at its first report
  in the period, ``interval`` apart, over the expected span. ``expected`` is their number (at
  least one), ``slots`` those with at least one report.
* completeness = reports / expected; uptime = slots / expected.

The inputs are plain data (:class:`SensorObservations`, built row by row by the adapter with
:meth:`SensorObservations.add_reading` and :meth:`SensorObservations.add_flags`), the
registry entry, the sensor's previous indicators and the dead letters counted for it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from statistics import median

from streams.kpis.periods import PeriodSpan
from streams.kpis.sketch import LatencySketch, nearest_rank
from urbanpulse.flags import STUCK
from urbanpulse.kpi import Indicators, IntervalSource, Scope
from urbanpulse.quantities import DEVICE_QUANTITIES, STEADY_QUANTITIES
from urbanpulse.registry import SensorInfo
from urbanpulse.scorecard import ScoreRules, pooled_score, sensor_score

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = 1_000_000
MIN_GAPS = 2  # an interval is inferred from at least this many gaps (three reports)
BATTERY = "battery_level"


def to_us(moment: datetime) -> int:
    """Integer microseconds since the epoch (exact, orderable)."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    """The UTC time of integer microseconds since the epoch."""
    return EPOCH + timedelta(microseconds=us)


@dataclass(kw_only=True)
class SensorObservations:
    """What one sensor delivered in one period, gathered reading by reading (mutable)."""

    tenant: str
    sensor_id: str
    report_us: set[int] = field(default_factory=set)
    readings: int = 0
    data_readings: int = 0  # readings of what it measures (not of device health or radio)
    latencies_s: list[float] = field(default_factory=list)
    flag_counts: Counter[str] = field(default_factory=Counter)
    flagged: int = 0  # data readings with a scored flag
    battery: tuple[int, float] | None = None  # (observed µs, level) of the latest

    def add_reading(self, observed_us: int, received_us: int, quantity: str) -> None:
        """One stored reading: its observation and receipt times, and its quantity."""
        self.report_us.add(observed_us)
        self.readings += 1
        self.data_readings += quantity not in DEVICE_QUANTITIES
        self.latencies_s.append((received_us - observed_us) / US)

    def add_flags(self, flags: Iterable[str], scored: frozenset[str], quantity: str) -> None:
        """The quality flags of one stored reading (each counted once)."""
        names = set(flags)
        self.flag_counts.update(names)
        if quantity in STEADY_QUANTITIES:
            names.discard(STUCK)  # holding still is what such a value may do
        if names & scored and quantity not in DEVICE_QUANTITIES:
            self.flagged += 1

    def add_battery(self, observed_us: int, level: float) -> None:
        """A battery reading; the latest one wins."""
        if self.battery is None or observed_us >= self.battery[0]:
            self.battery = (observed_us, level)


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """What every subject of one run shares: the period, the clock, the rules."""

    span: PeriodSpan
    now: datetime
    default_interval_s: float
    rules: ScoreRules

    @property
    def end(self) -> datetime:
        """The end of what can have been delivered: the period's end, or now if sooner."""
        return min(self.span.end, self.now)

    @property
    def complete(self) -> bool:
        """Whether the period had ended."""
        return self.now >= self.span.end


@dataclass(frozen=True, kw_only=True)
class Result:
    """A subject's indicators, and its latencies as a sketch (stored beside them)."""

    indicators: Indicators
    sketch: LatencySketch


def infer_interval_s(report_us: Sequence[int]) -> float | None:
    """The median gap between consecutive reports (sorted), from at least three reports."""
    if len(report_us) < MIN_GAPS + 1:
        return None
    gaps = [b - a for a, b in pairwise(report_us) if b > a]
    return median(gaps) / US if len(gaps) >= MIN_GAPS else None


def interval_of(
    info: SensorInfo | None, reports: Sequence[int], carry: Indicators | None, default_s: float
) -> tuple[float, IntervalSource]:
    """The interval to expect reports at, and where it comes from."""
    if info is not None and info.interval_s is not None:
        return info.interval_s, "registry"
    inferred = infer_interval_s(reports)
    if inferred is not None and inferred > 0:
        return inferred, "inferred"
    if carry is not None and carry.interval_s is not None and carry.interval_source == "inferred":
        return carry.interval_s, "inferred"
    return default_s, "default"


@dataclass(frozen=True, kw_only=True)
class Slots:
    """The expectation over one span: expected intervals and those with a report."""

    expected: int
    with_data: int


def slots(reports: Sequence[int], start_us: int, end_us: int, interval_s: float) -> Slots:
    """Expected slots over [start, end) on the grid of the first report, and those with data.

    The grid is anchored at the first report at or after ``start`` (else at ``start``); slot
    ``k`` is centred on ``anchor + k*interval``; a slot is expected when its centre lies in
    the span. A report counts in the slot whose centre is nearest. At least one is expected.
    """
    step = interval_s * US
    inside = [t for t in reports if start_us <= t < end_us]
    anchor = inside[0] if inside else start_us
    before = math.floor((anchor - start_us) / step)
    after = max(0, math.ceil((end_us - anchor) / step))
    filled = {k for t in inside if 0 <= (k := round((t - anchor) / step)) < after}
    return Slots(expected=max(1, before + after), with_data=len(filled))


def _flag_shares(counts: Counter[str] | dict[str, int], readings: int) -> dict[str, float]:
    if readings == 0:
        return {}
    return {name: round(n / readings, 6) for name, n in sorted(counts.items())}


def _latencies(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    ordered = sorted(values)
    return round(nearest_rank(ordered, 0.5), 3), round(nearest_rank(ordered, 0.95), 3)


def _since_last(last: datetime | None, ev: Evaluation) -> float | None:
    if last is None:
        return None
    return round(max(0.0, (ev.end - last).total_seconds()), 3)


def sensor_indicators(
    *,
    tenant: str,
    sensor_id: str,
    observed: SensorObservations | None,
    info: SensorInfo | None,
    carry: Indicators | None,
    letters: Counter[str],
    ev: Evaluation,
) -> Result:
    """One sensor's indicators over the evaluation's period.

    ``carry`` is the sensor's indicators of the period before (first seen, last reading,
    battery and inferred interval carry over); ``letters`` its dead letters by reason.
    """
    obs = observed or SensorObservations(tenant=tenant, sensor_id=sensor_id)
    reports = sorted(obs.report_us)
    span_start, end_us = to_us(ev.span.start), to_us(ev.end)
    seen_before = carry is not None and carry.first_seen is not None
    start_us = span_start if seen_before or not reports else max(span_start, reports[0])
    interval_s, source = interval_of(info, reports, carry, ev.default_interval_s)
    grid = slots(reports, start_us, end_us, interval_s)
    first_seen = carry.first_seen if seen_before and carry else None
    if first_seen is None and reports:
        first_seen = from_us(reports[0])
    last = from_us(reports[-1]) if reports else (carry.last_reading_at if carry else None)
    battery_pct, battery_at = _battery(obs, carry)
    p50, p95 = _latencies(obs.latencies_s)
    dead = sum(letters.values())
    base = Indicators(
        tenant=tenant,
        scope="sensor",
        subject=sensor_id,
        period=ev.span.period,
        start=ev.span.start,
        end=ev.span.end,
        evaluated_at=ev.now,
        complete=ev.complete,
        district=info.district if info else None,
        sensors=1,
        sensors_reporting=1 if reports else 0,
        interval_s=round(interval_s, 3),
        interval_source=source,
        interval_inferred=source != "registry",
        expected=grid.expected,
        reports=len(reports),
        slots=grid.with_data,
        readings=obs.readings,
        data_readings=obs.data_readings,
        completeness=round(len(reports) / grid.expected, 6),
        uptime=round(grid.with_data / grid.expected, 6),
        latency_p50_s=p50,
        latency_p95_s=p95,
        flag_counts=dict(sorted(obs.flag_counts.items())),
        flag_shares=_flag_shares(obs.flag_counts, obs.readings),
        flagged=obs.flagged,
        dead_letters=dead,
        dead_letter_reasons=dict(sorted(letters.items())),
        first_seen=first_seen,
        last_reading_at=last,
        since_last_s=_since_last(last, ev),
        battery_pct=battery_pct,
        battery_at=battery_at,
        battery_low_sensors=int(
            battery_pct is not None and battery_pct <= ev.rules.battery_low_pct
        ),
    )
    return Result(indicators=scored(base, ev.rules), sketch=LatencySketch.of(obs.latencies_s))


def _battery(
    obs: SensorObservations, carry: Indicators | None
) -> tuple[float | None, datetime | None]:
    if obs.battery is not None:
        return obs.battery[1], from_us(obs.battery[0])
    if carry is not None:
        return carry.battery_pct, carry.battery_at
    return None, None


def scored(ind: Indicators, rules: ScoreRules) -> Indicators:
    """A sensor's indicators with its score and components filled in."""
    score, parts = sensor_score(ind, rules)
    return ind.model_copy(
        update={
            "score": None if score is None else round(score, 2),
            "components": {k: round(v, 6) for k, v in parts.items()},
        }
    )


def pooled_indicators(
    *,
    tenant: str,
    scope: Scope,
    subject: str,
    members: Sequence[Result],
    letters: Counter[str],
    ev: Evaluation,
) -> Result:
    """A district's or tenant's indicators from its sensors' (``letters``: all of its own)."""
    inds = [m.indicators for m in members]
    sketch = LatencySketch.merged(m.sketch for m in members)
    expected = sum(i.expected for i in inds)
    reports = sum(i.reports for i in inds)
    with_data = sum(i.slots for i in inds)
    readings = sum(i.readings for i in inds)
    flags: Counter[str] = Counter()
    for i in inds:
        flags.update(i.flag_counts)
    firsts = [i.first_seen for i in inds if i.first_seen is not None]
    lasts = [i.last_reading_at for i in inds if i.last_reading_at is not None]
    batteries = [i for i in inds if i.battery_pct is not None]
    lowest = min(batteries, key=lambda i: i.battery_pct or 0.0) if batteries else None
    p50, p95 = sketch.quantile(0.5), sketch.quantile(0.95)
    score, parts = pooled_score([(i.score, i.components) for i in inds])
    last = max(lasts) if lasts else None
    return Result(
        indicators=Indicators(
            tenant=tenant,
            scope=scope,
            subject=subject,
            period=ev.span.period,
            start=ev.span.start,
            end=ev.span.end,
            evaluated_at=ev.now,
            complete=ev.complete,
            district=subject if scope == "district" else None,
            sensors=len(inds),
            sensors_reporting=sum(1 for i in inds if i.reports > 0),
            interval_inferred=any(i.interval_inferred for i in inds),
            expected=expected,
            reports=reports,
            slots=with_data,
            readings=readings,
            data_readings=sum(i.data_readings for i in inds),
            completeness=round(reports / expected, 6) if expected else 0.0,
            uptime=round(with_data / expected, 6) if expected else 0.0,
            latency_p50_s=None if p50 is None else round(p50, 3),
            latency_p95_s=None if p95 is None else round(p95, 3),
            flag_counts=dict(sorted(flags.items())),
            flag_shares=_flag_shares(flags, readings),
            flagged=sum(i.flagged for i in inds),
            dead_letters=sum(letters.values()),
            dead_letter_reasons=dict(sorted(letters.items())),
            first_seen=min(firsts) if firsts else None,
            last_reading_at=last,
            since_last_s=_since_last(last, ev),
            battery_pct=lowest.battery_pct if lowest else None,
            battery_at=lowest.battery_at if lowest else None,
            battery_low_sensors=sum(i.battery_low_sensors for i in inds),
            score=None if score is None else round(score, 2),
            components={k: round(v, 6) for k, v in parts.items()},
        ),
        sketch=sketch,
    )


def week_of_days(
    days: Sequence[Result], *, letters: Counter[str], ev: Evaluation, info: SensorInfo | None
) -> Result:
    """A sensor's week from its computed days (oldest first; ``letters``: the week's)."""
    inds = [d.indicators for d in days]
    latest = inds[-1]
    expected = sum(i.expected for i in inds)
    reports = sum(i.reports for i in inds)
    with_data = sum(i.slots for i in inds)
    readings = sum(i.readings for i in inds)
    flags: Counter[str] = Counter()
    for i in inds:
        flags.update(i.flag_counts)
    sketch = LatencySketch.merged(d.sketch for d in days)
    p50, p95 = sketch.quantile(0.5), sketch.quantile(0.95)
    firsts = [i.first_seen for i in inds if i.first_seen is not None]
    lasts = [i.last_reading_at for i in inds if i.last_reading_at is not None]
    batteries = [i for i in inds if i.battery_at is not None]
    battery = max(batteries, key=lambda i: i.battery_at or ev.span.start) if batteries else None
    last = max(lasts) if lasts else None
    base = Indicators(
        tenant=latest.tenant,
        scope="sensor",
        subject=latest.subject,
        period="week",
        start=ev.span.start,
        end=ev.span.end,
        evaluated_at=ev.now,
        complete=ev.complete,
        district=info.district if info else latest.district,
        sensors=1,
        sensors_reporting=1 if reports else 0,
        interval_s=latest.interval_s,
        interval_source=latest.interval_source,
        interval_inferred=any(i.interval_inferred for i in inds),
        expected=expected,
        reports=reports,
        slots=with_data,
        readings=readings,
        data_readings=sum(i.data_readings for i in inds),
        completeness=round(reports / expected, 6) if expected else 0.0,
        uptime=round(with_data / expected, 6) if expected else 0.0,
        latency_p50_s=None if p50 is None else round(p50, 3),
        latency_p95_s=None if p95 is None else round(p95, 3),
        flag_counts=dict(sorted(flags.items())),
        flag_shares=_flag_shares(flags, readings),
        flagged=sum(i.flagged for i in inds),
        dead_letters=sum(letters.values()),
        dead_letter_reasons=dict(sorted(letters.items())),
        first_seen=min(firsts) if firsts else None,
        last_reading_at=last,
        since_last_s=_since_last(last, ev),
        battery_pct=battery.battery_pct if battery else None,
        battery_at=battery.battery_at if battery else None,
        battery_low_sensors=int(
            battery is not None
            and battery.battery_pct is not None
            and battery.battery_pct <= ev.rules.battery_low_pct
        ),
    )
    return Result(indicators=scored(base, ev.rules), sketch=sketch)
