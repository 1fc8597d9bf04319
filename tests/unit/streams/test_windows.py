import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.windows import (
    Aggregate,
    Window,
    is_late,
    new_window,
    offline,
    parse_window,
    prune,
    window_for,
    window_start,
)

MIN = 60_000_000


def test_parse_window() -> None:
    assert parse_window("1m").total_seconds() == 60
    assert parse_window("15m").total_seconds() == 900
    assert parse_window("1h").total_seconds() == 3600
    for bad in ("0m", "7m", "1w", "m", "1.5h"):
        with pytest.raises(ValueError):
            parse_window(bad)


def test_aggregate_values() -> None:
    windows: list[Window] = []
    for t, value in ((3, 4.0), (1, 1.0), (2, 7.0)):
        window_for(windows, 0, t, value)
    [window] = windows
    assert window.aggregate() == Aggregate(count=3, mean=4.0, min=1.0, max=7.0, last=4.0)


def test_window_boundaries_and_lateness() -> None:
    assert window_start(59_999_999, MIN) == 0 and window_start(60_000_000, MIN) == MIN
    windows: list[Window] = []
    window_for(windows, MIN, 60_000_000, 2.0)
    window_for(windows, 0, 59_999_999, 1.0)  # out of order: kept in start order
    assert [w.start for w in windows] == [0, MIN]
    # lateness 30 s: window 0 takes values while its end + 30 s is after the watermark
    assert not is_late(0, MIN, 30_000_000, MIN + 29_999_999)
    assert is_late(0, MIN, 30_000_000, MIN + 30_000_000)
    assert not is_late(0, MIN, 30_000_000, None)  # nothing aggregated yet
    prune(windows, MIN, 30_000_000, MIN + 30_000_000)
    assert [w.start for w in windows] == [MIN]


def test_last_is_by_event_time_not_arrival() -> None:
    window = new_window(0, 20, 2.0)
    window_for([window], 0, 10, 1.0)
    assert window.aggregate().last == 2.0 and window.count == 2


values = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 60 * MIN), values),
        min_size=1,
        max_size=80,
        unique_by=lambda p: p[0],
    ),
    st.integers(0, 2**32),
    st.sampled_from([MIN, 15 * MIN, 60 * MIN]),
)
def test_running_aggregates_in_any_order_equal_the_offline_computation(
    raw: list[tuple[int, float]], seed: int, size: int
) -> None:
    shuffled = raw[:]
    random.Random(seed).shuffle(shuffled)
    windows: list[Window] = []
    for t, value in shuffled:
        window_for(windows, window_start(t, size), t, value)
    found = {w.start: w.aggregate() for w in windows}
    assert found == offline([(str(t), t, v) for t, v in raw], size)
    for w in windows:  # the mean: exactly the correctly rounded sum over the count
        mine = [v for t, v in raw if window_start(t, size) == w.start]
        assert w.aggregate().mean == math.fsum(mine) / len(mine)
