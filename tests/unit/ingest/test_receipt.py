"""Receipt times never repeat and never go back, whatever the wall clock does."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from ingest.receipt import TICK, ReceiptClock

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def clock_of(times: list[datetime]) -> ReceiptClock:
    it = iter(times)
    return ReceiptClock(now=lambda: next(it))


def test_a_coarse_clock_still_gives_distinct_times() -> None:
    clock = clock_of([T0, T0, T0])
    assert [clock.next() for _ in range(3)] == [T0, T0 + TICK, T0 + 2 * TICK]


def test_a_clock_stepping_back_does_not_take_receipt_times_back() -> None:
    clock = clock_of([T0, T0 - timedelta(seconds=5), T0 + timedelta(seconds=1)])
    assert [clock.next() for _ in range(3)] == [T0, T0 + TICK, T0 + timedelta(seconds=1)]


@given(st.lists(st.integers(-10_000, 10_000), min_size=1, max_size=50))
def test_receipt_times_are_strictly_increasing(offsets_us: list[int]) -> None:
    clock = clock_of([T0 + timedelta(microseconds=o) for o in offsets_us])
    got = [clock.next() for _ in offsets_us]
    assert all(a < b for a, b in pairwise(got))
    assert all(g >= T0 + timedelta(microseconds=o) for g, o in zip(got, offsets_us, strict=True))


def test_the_real_clock_is_utc() -> None:
    first, second = ReceiptClock().next(), ReceiptClock().next()
    assert first.tzinfo is UTC and second >= first
