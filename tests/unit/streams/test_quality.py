from datetime import timedelta

import msgspec

from streams.quality import QualityRules, clock_flags, epoch_us, out_of_range, sequence_flags
from tests.unit.streams.helpers import T0, reading, series
from urbanpulse.flags import FUTURE, GAP, SPIKE, STUCK, TOO_OLD, UNIT_MISMATCH

RULES = QualityRules()
MINUTE = timedelta(minutes=1)
MINUTE_US = 60_000_000


def test_out_of_range_has_a_reason() -> None:
    assert out_of_range(reading(value=2500)) == (
        "pm2_5 2500.0 ug/m3 is outside the physical range [0, 2000]"
    )
    assert out_of_range(reading(value=-0.1)) is not None
    assert out_of_range(reading(value=0)) is None
    assert out_of_range(reading(value=2000)) is None


def test_unknown_quantity_or_other_unit_is_not_range_checked() -> None:
    assert out_of_range(reading(quantity="mystery", value=1e9)) is None
    odd_unit = reading(value=1e9, unit="mg/m3")
    assert out_of_range(odd_unit) is None
    assert UNIT_MISMATCH in clock_flags(odd_unit, RULES)


def test_future_and_too_old() -> None:
    ahead = reading(observed_at=T0 + timedelta(minutes=6), received_at=T0)
    assert clock_flags(ahead, RULES) == [FUTURE]
    assert clock_flags(reading(observed_at=T0 + timedelta(minutes=4), received_at=T0), RULES) == []
    old = reading(observed_at=T0, received_at=T0 + timedelta(days=1, seconds=1))
    assert clock_flags(old, RULES) == [TOO_OLD]


def run(values: list[float], step: timedelta = MINUTE) -> list[list[str]]:
    memory = None
    out = []
    for r in series(values, step):
        flags, memory = sequence_flags(r, epoch_us(r.observed_at), memory, MINUTE_US, RULES)
        out.append(flags)
    return out


def test_spike_flags_the_jump_only() -> None:
    assert run([10, 12, 600, 590]) == [[], [], [SPIKE], []]


def test_stuck_from_the_nth_equal_value() -> None:
    flags = run([5.0] * 11 + [6.0])
    assert [STUCK in f for f in flags] == [False] * 9 + [True, True, False]


def test_gap_after_silence() -> None:
    memory = None
    readings = [*series([1, 2], step=MINUTE), reading(value=3, observed_at=T0 + 5 * MINUTE)]
    out = []
    for r in readings:
        flags, memory = sequence_flags(r, epoch_us(r.observed_at), memory, MINUTE_US, RULES)
        out.append(flags)
    assert out == [[], [], [GAP]]


def test_out_of_order_reading_is_not_compared() -> None:
    first, second = series([10, 11])
    _, memory = sequence_flags(second, epoch_us(second.observed_at), None, MINUTE_US, RULES)
    flags, after = sequence_flags(
        msgspec.structs.replace(first, value=900.0),
        epoch_us(first.observed_at),
        memory,
        MINUTE_US,
        RULES,
    )
    assert flags == [] and after == memory
