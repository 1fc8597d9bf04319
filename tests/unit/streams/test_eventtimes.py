"""Remembered event times: 32-bit offsets while they fit, the same answers as a sorted list."""

from array import array

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import eventtimes
from streams.eventtimes import SPAN
from streams.state import SensorState, Series, decode_sensor, encode_sensor

T0 = 1_796_000_000_000_000  # µs, December 2026
MINUTE = 60_000_000


def series_of(times: list[int]) -> Series:
    series = Series("temperature", None, "Cel")
    for t in times:
        eventtimes.add(series, t)
    return series


def test_times_within_71_minutes_take_four_bytes_each() -> None:
    series = series_of([T0 + k * 1_000_000 for k in range(256)])
    assert series.times.typecode == "I" and series.times.itemsize == 4
    assert series.base_us == T0
    assert eventtimes.nth_newest(series, 1) == T0 + 255 * 1_000_000
    assert eventtimes.nth_newest(series, 256) == T0
    assert eventtimes.absolute(series) == [T0 + k * 1_000_000 for k in range(256)]


def test_a_span_past_32_bits_falls_back_to_64_bit_times_and_narrows_again() -> None:
    # A sensor reporting once a minute: two hours of times do not fit 2**32 µs.
    series = series_of([T0 + k * MINUTE for k in range(120)])
    assert series.times.typecode == "q" and series.base_us is None
    assert eventtimes.contains(series, T0 + 119 * MINUTE)
    eventtimes.forget_before(series, T0 + 60 * MINUTE)  # the last hour fits again
    assert series.times.typecode == "I" and series.base_us == T0 + 60 * MINUTE
    assert eventtimes.absolute(series) == [T0 + k * MINUTE for k in range(60, 120)]


def test_a_busy_series_rebases_when_its_newest_time_passes_the_span() -> None:
    series = series_of([T0, T0 + SPAN - 1])
    eventtimes.forget_oldest(series, 1)
    eventtimes.add(series, T0 + SPAN + 5)  # past base + 2**32: offsets from the oldest kept
    assert series.times.typecode == "I" and series.base_us == T0 + SPAN - 1
    assert eventtimes.absolute(series) == [T0 + SPAN - 1, T0 + SPAN + 5]


def test_forget_oldest_returns_the_newest_time_forgotten() -> None:
    series = series_of([T0 + 30, T0 + 10, T0 + 20])
    assert eventtimes.forget_oldest(series, 2) == T0 + 20
    assert eventtimes.absolute(series) == [T0 + 30]


def test_a_state_saved_with_64_bit_times_and_no_base_reads_as_before() -> None:
    # The layout before base_us: the series struct one field shorter, times absolute.
    state = SensorState(0, "t", "s")
    series = state.series["temperature"] = series_of([])
    series.times = array("q", [T0, T0 + 5])
    saved = msgspec.msgpack.decode(encode_sensor(state))
    saved[6]["temperature"].pop()  # base_us, the last field
    old = decode_sensor(msgspec.msgpack.encode(saved))
    again = old.series["temperature"]
    assert again.base_us is None and again.times.typecode == "q"
    assert eventtimes.contains(again, T0 + 5) and not eventtimes.contains(again, T0 + 6)
    eventtimes.add(again, T0 + 6)
    assert eventtimes.absolute(again) == [T0, T0 + 5, T0 + 6]


def test_offsets_round_trip_through_a_snapshot() -> None:
    state = SensorState(0, "t", "s")
    state.series["temperature"] = series_of([T0 + 7, T0 + 3])
    again = decode_sensor(encode_sensor(state)).series["temperature"]
    assert again.times.typecode == "I" and again.base_us == T0 + 3
    assert eventtimes.absolute(again) == [T0 + 3, T0 + 7]


# Steps of a few seconds to a few hours: spans on both sides of 2**32 µs (71.6 minutes).
OFFSETS = st.integers(min_value=-3 * 3600 * 10**6, max_value=3 * 3600 * 10**6)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), OFFSETS),
        st.tuples(st.just("forget_before"), OFFSETS),
        st.tuples(st.just("forget_oldest"), st.integers(min_value=1, max_value=5)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(OPS, st.lists(OFFSETS, max_size=5))
def test_the_same_answers_as_a_sorted_list(ops: list[tuple[str, int]], probes: list[int]) -> None:
    series, reference = series_of([]), []
    for op, n in ops:
        t = T0 + n
        if op == "add" and t not in reference:
            eventtimes.add(series, t)
            reference = sorted([*reference, t])
        elif op == "forget_before":
            eventtimes.forget_before(series, t)
            reference = [r for r in reference if r >= t]
        elif op == "forget_oldest" and reference:
            count = min(n, len(reference))
            assert eventtimes.forget_oldest(series, count) == reference[count - 1]
            reference = reference[count:]
        assert eventtimes.absolute(series) == reference
        assert eventtimes.oldest(series) == (reference[0] if reference else None)
        assert (series.times.typecode == "I") == (series.base_us is not None)
        for probe in [*reference, *(T0 + p for p in probes)]:
            assert eventtimes.contains(series, probe) == (probe in reference)
