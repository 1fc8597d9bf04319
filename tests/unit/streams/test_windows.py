import math
import random
from array import array

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.exact import SliceSums
from streams.state import _dec_hook
from streams.windows import SLOT, Aggregate, WindowSet, is_late, offline, parse_window, window_start

MIN = 60_000_000


def test_parse_window() -> None:
    assert parse_window("1m").total_seconds() == 60
    assert parse_window("15m").total_seconds() == 900
    assert parse_window("1h").total_seconds() == 3600
    for bad in ("0m", "7m", "1w", "m", "1.5h"):
        with pytest.raises(ValueError):
            parse_window(bad)


def test_aggregate_values() -> None:
    windows = WindowSet(MIN)
    for t, value in ((3, 4.0), (1, 1.0), (2, 7.0)):
        assert windows.add(t, value) == 0
    window = windows.window(0)
    assert window is not None
    assert window.aggregate() == Aggregate(count=3, mean=4.0, min=1.0, max=7.0, last=4.0)


def test_window_boundaries_and_lateness() -> None:
    assert window_start(59_999_999, MIN) == 0 and window_start(60_000_000, MIN) == MIN
    windows = WindowSet(MIN)
    assert windows.add(60_000_000, 2.0) == MIN
    assert windows.add(59_999_999, 1.0) == 0  # out of order: kept in start order
    assert windows.starts() == [0, MIN] and len(windows) == 2
    # lateness 30 s: window 0 takes values while its end + 30 s is after the watermark
    assert not is_late(0, MIN, 30_000_000, MIN + 29_999_999)
    assert is_late(0, MIN, 30_000_000, MIN + 30_000_000)
    assert not is_late(0, MIN, 30_000_000, None)  # nothing aggregated yet
    windows.prune(30_000_000, MIN + 30_000_000)
    assert windows.starts() == [MIN] and windows.window(0) is None


def test_last_is_by_event_time_not_arrival() -> None:
    windows = WindowSet(MIN)
    windows.add(20, 2.0)
    windows.add(10, 1.0)
    window = windows.window(0)
    assert window is not None and window.aggregate().last == 2.0 and window.count == 2


def test_a_sum_needing_several_partials_keeps_them_apart_until_its_window_closes() -> None:
    windows = WindowSet(MIN)
    for value in (1e16, 1.0):  # 1e16 + 1 is no float: two partials
        windows.add(5, value)
    window = windows.window(0)
    assert window is not None and window.sum == [1.0, 1e16]
    assert windows.slots[-1] == 1.0 and windows.extra is None  # the second one: its low
    assert window.aggregate().mean == math.fsum([1e16, 1.0]) / 2
    windows.add(6, 1.0)  # 1e16 + 2 is a float again
    assert windows.slots[-1] == 0.0 and windows.extra is None
    windows.prune(0, MIN)
    assert windows.extra is None and len(windows) == 0


def test_partials_below_the_second_go_to_extra_by_window_start() -> None:
    windows = WindowSet(MIN)
    windows.add(MIN + 1, 5.0)  # a later window first: the next one goes in before it
    for value in (1e32, 1.0, 1e-32):
        windows.add(5, value)
    window = windows.window(0)
    assert window is not None and isinstance(window.sum, list) and len(window.sum) == 3
    assert windows.slots[SLOT - 1 :: SLOT].tolist() == [window.sum[1], 0.0]
    assert windows.extra == {0: window.sum[:1]}
    assert window.aggregate().mean == math.fsum([1e32, 1.0, 1e-32]) / 3
    windows.prune(0, MIN)  # window 0 is final and written: gone, its partials too
    assert windows.starts() == [MIN] and windows.slots[-1] == 0.0 and windows.extra is None


def test_a_window_set_saved_before_lows_keeps_its_sums() -> None:
    windows = WindowSet(MIN)
    for t, value in (
        (5, 1e32),
        (6, 1.0),
        (7, 1e-32),
        (MIN + 1, 1e16),
        (MIN + 2, 1.0),
        (2 * MIN, 3),
    ):
        windows.add(t, value)
    expected = [windows.window(start) for start in windows.starts()]
    below = {w.start: w.sum[:-1] for w in expected if w is not None and isinstance(w.sum, list)}
    assert [len(v) for v in below.values()] == [2, 1]
    # What an older worker saved: four fields, windows of 7 doubles, every lower partial
    # in extra.
    narrow = array("d", (d for i, d in enumerate(windows.slots) if i % SLOT != SLOT - 1))
    saved = msgspec.msgpack.encode([MIN, ["d", narrow.tobytes()], below, None])
    decoded = msgspec.msgpack.Decoder(WindowSet, dec_hook=_dec_hook).decode(saved)
    assert [decoded.window(start) for start in decoded.starts()] == expected
    assert decoded.slots == windows.slots and decoded.extra == windows.extra and decoded.wide


values = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 60 * MIN), st.one_of(values, values.map(lambda v: round(v, 2)))),
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
    windows = WindowSet(size)
    for t, value in shuffled:
        windows.add(t, value)
    found = {}
    for start in windows.starts():
        window = windows.window(start)
        assert window is not None
        found[start] = window.aggregate()
    assert found == offline([(str(t), t, v) for t, v in raw], size)
    windows.changed(0)  # every window unwritten: the rows a snapshot writes are the same
    rows = {start: Aggregate(count, *rest) for start, count, *rest in windows.unwritten_rows()}
    assert rows == found
    for start, aggregate in found.items():  # the mean: the correctly rounded sum / count
        mine = [v for t, v in raw if window_start(t, size) == start]
        assert aggregate.mean == math.fsum(mine) / len(mine)


def test_a_final_window_stays_until_written_and_is_listed_from_the_earliest_changed_on() -> None:
    windows = WindowSet(MIN)
    windows.add(1, 1.0)
    windows.changed(0)
    windows.add(MIN + 1, 2.0)
    assert [row[0] for row in windows.unwritten_rows()] == [0, MIN]  # from the earliest on
    windows.prune(0, MIN + 2)  # window 0 is final, but its last value is not written yet
    assert windows.starts() == [0, MIN]
    assert [row[-1] for row in windows.unwritten_rows()] == [1.0, 2.0]  # last values
    windows.unwritten = None  # written (``streams.pipeline.mark_written``)
    windows.prune(0, MIN + 2)
    assert windows.starts() == [MIN]  # written and final: dropped; open: kept
    windows.prune(0, 3 * MIN)
    assert len(windows) == 0 and windows.unwritten_rows() == []


def timed_values(
    span: int, min_size: int, max_size: int
) -> st.SearchStrategy[list[tuple[int, float]]]:
    """(time µs in [0, span], value) pairs: values of any magnitude, or sensor-like ones."""
    values = st.one_of(st.floats(-1e300, 1e300), st.floats(-100, 100).map(lambda v: round(v, 1)))
    return st.lists(st.tuples(st.integers(0, span), values), min_size=min_size, max_size=max_size)


def assert_same_windows(mine: WindowSet, theirs: WindowSet) -> None:
    """The same windows, with the same aggregates and last times."""
    assert mine.starts() == theirs.starts()
    for start in theirs.starts():
        one, other = mine.window(start), theirs.window(start)
        assert one is not None and other is not None
        assert one.aggregate() == other.aggregate() and one.last_us == other.last_us


@settings(max_examples=300, deadline=None)
@given(
    timed_values(5 * MIN, min_size=1, max_size=60),
    st.integers(0, 2**32),
)
def test_adding_a_batch_at_once_equals_adding_each_value(
    points: list[tuple[int, float]], seed: int
) -> None:
    one_by_one, at_once = WindowSet(MIN), WindowSet(MIN)
    for t, value in points:
        one_by_one.add(t, value)
    rng = random.Random(seed)
    reached: set[int] = set()
    at = 0
    while at < len(points):  # in batches of any length, times in any order
        batch = points[at : at + rng.randint(1, 20)]
        starts, refused = at_once.add_all([t for t, _ in batch], [v for _, v in batch])
        assert refused == [] and set(starts) == {window_start(t, MIN) for t, _ in batch}
        reached.update(starts)
        at += len(batch)
    assert at_once.starts() == sorted(reached)
    assert_same_windows(at_once, one_by_one)


def test_a_value_whose_window_sum_would_overflow_is_refused_and_the_others_are_added() -> None:
    windows = WindowSet(MIN)
    starts, refused = windows.add_all([1, 2, 3, MIN], [1.7e308, 1.7e308, 5.0, 1.0])
    assert starts == [0, MIN] and refused == [1]
    first = windows.window(0)
    assert first is not None and first.count == 2 and math.isfinite(first.aggregate().mean)
    assert first.aggregate().max == 1.7e308 and first.last == 5.0
    assert windows.add_all([4], [1.7e308]) == ([0], [0])  # alone, it is refused too
    assert windows.window(0) == first  # and the window is as it was


@settings(max_examples=200, deadline=None)
@given(timed_values(120 * MIN, min_size=2, max_size=80))
def test_sizes_sharing_slice_sums_get_what_each_gets_alone(points: list[tuple[int, float]]) -> None:
    # The pipeline sums a batch's values once for the windows of every size (SliceSums).
    times, values = [t for t, _ in sorted(points)], [v for _, v in sorted(points)]
    sums = SliceSums(values)
    for size in (MIN, 15 * MIN, 60 * MIN):
        shared, alone = WindowSet(size), WindowSet(size)
        assert shared.add_all(times, values, sums) == alone.add_all(times, values)
        assert_same_windows(shared, alone)
