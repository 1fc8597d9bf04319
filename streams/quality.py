"""Quality checks of readings (pure): physical ranges, spikes, stuck values, gaps, clock skew.

Two kinds of outcome, as issue 4 asks for "quality, not silent filtering":

* a value outside the physical range of its quantity (the ``range`` of
  :data:`urbanpulse.quantities.QUANTITIES`, documented in docs/streams.md) cannot be true: the
  reading becomes a dead letter with reason ``out_of_range``;
* a plausible but suspect reading is stored with quality flags
  (:data:`urbanpulse.flags.MEANINGS`).

Sequential checks (spike, stuck, gap) compare a reading with the previous one of the same
series in event time, kept in :class:`SeriesMemory`. A reading older than the newest one seen
is not compared (it is out of order, and its neighbours are unknown).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

import msgspec

from urbanpulse.flags import FUTURE, GAP, SPIKE, STUCK, TOO_OLD, UNIT_MISMATCH
from urbanpulse.model import Reading
from urbanpulse.quantities import QUANTITIES, Range

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class QualityRules:
    """The thresholds of the suspect-reading checks (from ``StreamsSettings``)."""

    max_future: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=1)
    gap_factor: float = 3.0
    stuck_count: int = 10

    @cached_property
    def max_future_us(self) -> int:
        """``max_future`` in µs (times compared as :func:`epoch_us`)."""
        return self.max_future // _US

    @cached_property
    def max_age_us(self) -> int:
        """``max_age`` in µs."""
        return self.max_age // _US


class SeriesMemory(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What the sequential checks remember of one series (sensor, quantity, probe)."""

    last_us: int
    last_value: float
    repeats: int = 1


def epoch_us(moment: datetime) -> int:
    """A UTC time as integer microseconds since the epoch (exact and orderable)."""
    return (moment - EPOCH) // _US


def _range(reading: Reading) -> Range | None:
    """The quantity's physical range, when it has one and the reading is in its unit."""
    return range_of(reading.quantity, reading.unit)


def range_of(quantity: str, unit: str) -> Range | None:
    """A quantity's physical range, when it has one and ``unit`` is its unit."""
    known = QUANTITIES.get(quantity)
    if known is None or known.unit != unit:
        return None
    return known.range


def unit_mismatch(quantity: str, unit: str) -> bool:
    """Whether a quantity with a physical range is given in another unit
    (:data:`UNIT_MISMATCH`)."""
    known = QUANTITIES.get(quantity)
    return known is not None and known.range is not None and known.unit != unit


def out_of_range(reading: Reading) -> str | None:
    """Why the value cannot be physically true, or None when it can (or is not checked)."""
    bounds = _range(reading)
    if bounds is None:
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
    if unit_mismatch(reading.quantity, reading.unit):
        flags.append(UNIT_MISMATCH)
    return flags


def sequence_flags(
    reading: Reading,
    now_us: int,
    memory: SeriesMemory | None,
    interval_us: int,
    rules: QualityRules,
) -> tuple[list[str], SeriesMemory | None]:
    """Spike, stuck and gap flags against the previous reading, and the updated memory.

    ``now_us`` is the reading's event time (:func:`epoch_us`), ``interval_us`` the sensor's
    expected interval: the caller has both already (this runs for every reading)."""
    return sequence_flags_within(_range(reading), reading.value, now_us, memory, interval_us, rules)


def sequence_flags_within(
    bounds: Range | None,
    value: float,
    now_us: int,
    memory: SeriesMemory | None,
    interval_us: int,
    rules: QualityRules,
) -> tuple[list[str], SeriesMemory | None]:
    """:func:`sequence_flags` of a value whose range (:func:`range_of`) the caller knows: a
    run of one series' readings looks it up once."""
    if memory is None:
        return [], SeriesMemory(last_us=now_us, last_value=value)
    if now_us <= memory.last_us:
        return [], memory
    flags = []
    if bounds is not None and abs(value - memory.last_value) > bounds.max_step:
        flags.append(SPIKE)
    repeats = memory.repeats + 1 if value == memory.last_value else 1
    if repeats >= rules.stuck_count:
        flags.append(STUCK)
    if now_us - memory.last_us > rules.gap_factor * interval_us:
        flags.append(GAP)
    return flags, SeriesMemory(last_us=now_us, last_value=value, repeats=repeats)
