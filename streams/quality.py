"""Quality checks of readings (pure): physical ranges, spikes, stuck values, gaps, clock skew.

Two kinds of outcome, as issue 4 asks for "quality, not silent filtering":

* a value outside the physical range of its quantity (:data:`RANGES`, documented in
  docs/streams.md) cannot be true: the reading becomes a dead letter with reason
  ``out_of_range``;
* a plausible but suspect reading is stored with quality flags (:data:`FLAGS`).

Sequential checks (spike, stuck, gap) compare a reading with the previous one of the same
series in event time, kept in :class:`SeriesMemory`. A reading older than the newest one seen
is not compared (it is out of order, and its neighbours are unknown).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict

from urbanpulse.model import Reading

FUTURE = "future"
TOO_OLD = "too_old"
SPIKE = "spike"
STUCK = "stuck"
GAP = "gap"
UNIT_MISMATCH = "unit_mismatch"
UNREGISTERED = "unregistered"
LATE = "late"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FLAGS = {
    FUTURE: "observed more than max_future_s after it was received (sensor clock ahead)",
    TOO_OLD: "received more than max_age_s after it was observed",
    SPIKE: "jumped by more than the quantity's max_step since the previous reading",
    STUCK: "the same value stuck_count or more times in a row",
    GAP: "the previous reading of the series is more than gap_factor x interval older",
    UNIT_MISMATCH: "the unit differs from the quantity's canonical unit: range not checked",
    UNREGISTERED: "the sensor is not in the sensor registry",
    LATE: "too late for (some of) its windows: not counted in those aggregates",
}


@dataclass(frozen=True)
class Range:
    """Physically possible values of a quantity, and the largest plausible step between two."""

    unit: str
    low: float
    high: float
    max_step: float


RANGES: Mapping[str, Range] = MappingProxyType(
    {
        "temperature": Range("Cel", -60, 70, 10),
        "soil_temperature": Range("Cel", -40, 60, 10),
        "dew_point": Range("Cel", -80, 40, 10),
        "relative_humidity": Range("%", 0, 100, 40),
        "pressure": Range("hPa", 850, 1090, 10),
        "wind_speed": Range("m/s", 0, 115, 40),
        "wind_direction": Range("deg", 0, 360, 360),
        "precipitation": Range("mm", 0, 500, 200),
        "illuminance": Range("lx", 0, 200_000, 200_000),
        "uv_index": Range("1", 0, 25, 10),
        "pm1": Range("ug/m3", 0, 2000, 500),
        "pm2_5": Range("ug/m3", 0, 2000, 500),
        "pm4": Range("ug/m3", 0, 2000, 500),
        "pm10": Range("ug/m3", 0, 2000, 500),
        "co2": Range("[ppm]", 0, 40_000, 5000),
        "co": Range("ug/m3", 0, 150_000, 50_000),
        "no2": Range("ug/m3", 0, 2000, 500),
        "o3": Range("ug/m3", 0, 1000, 300),
        "so2": Range("ug/m3", 0, 3000, 1000),
        "noise_level": Range("dB", 0, 194, 50),
        "water_level": Range("m", -20, 200, 2),
        "fill_level": Range("%", 0, 100, 100),
        "soil_moisture": Range("%", 0, 100, 50),
        "occupancy": Range("1", 0, 1, 1),
        "vehicle_count": Range("{count}", 0, 1_000_000, 1_000_000),
        "bicycle_count": Range("{count}", 0, 1_000_000, 1_000_000),
        "battery_level": Range("%", 0, 100, 100),
        "battery_voltage": Range("V", 0, 60, 60),
    }
)
"""Quantity → physical range (in its canonical UCUM unit); the table of docs/streams.md."""


@dataclass(frozen=True)
class QualityRules:
    """The thresholds of the suspect-reading checks (from ``StreamsSettings``)."""

    max_future: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=1)
    gap_factor: float = 3.0
    stuck_count: int = 10
    ranges: Mapping[str, Range] = field(default_factory=lambda: RANGES)


class SeriesMemory(BaseModel):
    """What the sequential checks remember of one series (sensor, quantity)."""

    model_config = ConfigDict(frozen=True)

    last_us: int
    last_value: float
    repeats: int = 1


def epoch_us(moment: datetime) -> int:
    """A UTC time as integer microseconds since the epoch (exact and orderable)."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def out_of_range(reading: Reading, rules: QualityRules) -> str | None:
    """Why the value cannot be physically true, or None when it can (or is not checked)."""
    bounds = rules.ranges.get(reading.quantity)
    if bounds is None or bounds.unit != reading.unit:
        return None
    if not bounds.low <= reading.value <= bounds.high:
        return (
            f"{reading.quantity} {reading.value} {reading.unit} is outside the physical range "
            f"[{bounds.low}, {bounds.high}]"
        )
    return None


def clock_flags(reading: Reading, rules: QualityRules) -> list[str]:
    """Flags on the observation time compared with the time of receipt."""
    flags = []
    if reading.observed_at - reading.received_at > rules.max_future:
        flags.append(FUTURE)
    if reading.received_at - reading.observed_at > rules.max_age:
        flags.append(TOO_OLD)
    bounds = rules.ranges.get(reading.quantity)
    if bounds is not None and bounds.unit != reading.unit:
        flags.append(UNIT_MISMATCH)
    return flags


def sequence_flags(
    reading: Reading,
    memory: SeriesMemory | None,
    interval: timedelta,
    rules: QualityRules,
) -> tuple[list[str], SeriesMemory | None]:
    """Spike, stuck and gap flags against the previous reading, and the updated memory."""
    now_us = epoch_us(reading.observed_at)
    if memory is None:
        return [], SeriesMemory(last_us=now_us, last_value=reading.value)
    if now_us <= memory.last_us:
        return [], memory
    flags = []
    bounds = rules.ranges.get(reading.quantity)
    if (
        bounds is not None
        and bounds.unit == reading.unit
        and abs(reading.value - memory.last_value) > bounds.max_step
    ):
        flags.append(SPIKE)
    repeats = memory.repeats + 1 if reading.value == memory.last_value else 1
    if repeats >= rules.stuck_count:
        flags.append(STUCK)
    interval_us = interval // timedelta(microseconds=1)
    if now_us - memory.last_us > rules.gap_factor * interval_us:
        flags.append(GAP)
    return flags, SeriesMemory(last_us=now_us, last_value=reading.value, repeats=repeats)
