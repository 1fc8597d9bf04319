import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.windows import Aggregate, SeriesWindows, add, aggregate, offline, parse_window

MIN = 60_000_000


def test_parse_window() -> None:
    assert parse_window("1m").total_seconds() == 60
    assert parse_window("15m").total_seconds() == 900
    assert parse_window("1h").total_seconds() == 3600
    for bad in ("0m", "7m", "1w", "m", "1.5h"):
        with pytest.raises(ValueError):
            parse_window(bad)


def test_aggregate_values() -> None:
    members = {"a": (3, 4.0), "b": (1, 1.0), "c": (2, 7.0)}
    assert aggregate(members) == Aggregate(count=3, mean=4.0, min=1.0, max=7.0, last=4.0)


def test_window_boundaries_and_duplicates() -> None:
    state = SeriesWindows()
    assert add(state, "x", 59_999_999, 1.0, MIN, 0) == 0
    assert add(state, "y", 60_000_000, 2.0, MIN, 0) == MIN
    assert add(state, "x", 59_999_999, 9.0, MIN, 0) is None  # late: lateness 0
    assert aggregate(state.windows[MIN]).count == 1


def test_lateness_keeps_a_window_open_then_drops_it() -> None:
    state = SeriesWindows()
    add(state, "a", 10, 1.0, MIN, 30_000_000)
    add(state, "b", MIN + 20_000_000, 1.0, MIN, 30_000_000)
    assert add(state, "c", 20, 5.0, MIN, 30_000_000) == 0  # 20 s late, allowed
    assert aggregate(state.windows[0]).count == 2
    add(state, "d", MIN + 40_000_000, 1.0, MIN, 30_000_000)  # window 0 is now final
    assert 0 not in state.windows
    assert add(state, "e", 30, 5.0, MIN, 30_000_000) is None


LATENESS = 5 * MIN
points = st.lists(
    st.tuples(
        st.integers(0, 60 * MIN),
        st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 3)),
    ),
    min_size=1,
    max_size=80,
    unique_by=lambda p: p[0],
)


def within_lateness(stream: list[tuple[str, int, float]], rng: random.Random) -> list:
    """Shuffle, then repair so no point lags the newest seen by more than LATENESS."""
    shuffled = stream[:]
    rng.shuffle(shuffled)
    shuffled.sort(key=lambda p: p[1] // LATENESS)  # disorder only within LATENESS-wide blocks
    return shuffled


@settings(max_examples=200, deadline=None)
@given(points, st.integers(0, 2**32), st.sampled_from([MIN, 15 * MIN, 60 * MIN]))
def test_any_split_and_order_within_lateness_equals_the_whole(
    raw: list[tuple[int, float]], seed: int, size: int
) -> None:
    rng = random.Random(seed)
    stream = [(str(t), t, v) for t, v in raw]
    expected = offline(stream, size)
    ordered = within_lateness(stream, rng)
    # split into batches; replay some batches (at-least-once); round-trip the state as JSON
    cuts = sorted(rng.sample(range(len(ordered) + 1), k=min(3, len(ordered) + 1)))
    batches = [ordered[a:b] for a, b in zip([0, *cuts], [*cuts, len(ordered)], strict=True)]
    state = SeriesWindows()
    written: dict[int, Aggregate] = {}
    for batch in batches:
        for delivery in range(rng.choice([1, 1, 2])):
            for member, t, v in batch:
                start = add(state, member, t, v, size, LATENESS)
                if start is None:
                    # a redelivered point may find its window final (already written whole)
                    assert delivery > 0, "a point within lateness must be accepted"
                else:
                    written[start] = aggregate(state.windows[start])
            state = SeriesWindows.model_validate_json(state.model_dump_json())
    assert written == expected


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("abc"), st.integers(0, 180 * MIN), st.integers(0, 99)),
        min_size=1,
        max_size=120,
        unique_by=lambda p: (p[0], p[1]),
    ),
    st.integers(0, 2**32),
)
def test_a_district_gives_the_same_result_however_its_sensors_interleave(
    raw: list[tuple[str, int, int]], seed: int
) -> None:
    """Each sensor in order, sensors arbitrarily interleaved (one partition far ahead), no lag
    beyond the idle horizon."""
    rng = random.Random(seed)
    by_sensor = {s: sorted(p for p in raw if p[0] == s) for s in "abc"}
    queues = [q for q in by_sensor.values() if q]
    interleaved = []
    while queues:
        queue = rng.choice(queues)
        interleaved.append(queue.pop(0))
        queues = [q for q in queues if q]
    stream = [(f"{s}@{t}", t, float(v)) for s, t, v in raw]
    state = SeriesWindows()
    written: dict[int, Aggregate] = {}
    for sensor, t, v in interleaved:
        start = add(state, f"{sensor}@{t}", t, float(v), MIN, 0, sensor, idle_us=200 * MIN)
        assert start is not None
        written[start] = aggregate(state.windows[start])
    assert written == offline(stream, MIN)
