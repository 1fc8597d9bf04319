"""Latency percentiles: exact by nearest rank, and within 1 % from merged sketches."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.kpis.sketch import RELATIVE_ERROR, LatencySketch, nearest_rank

latencies = st.lists(
    st.one_of(
        st.floats(min_value=-7200, max_value=86_400, allow_nan=False),
        st.just(0.0),
    ),
    min_size=1,
    max_size=300,
)


def test_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (nearest_rank(values, 0.5), nearest_rank(values, 0.95), nearest_rank(values, 1)) == (
        50.0,
        95.0,
        100.0,
    )
    assert nearest_rank([3.0], 0.95) == 3.0


@given(latencies, latencies, st.sampled_from([0.5, 0.95]))
def test_a_merged_sketch_answers_within_one_percent_of_the_exact_percentile(
    a: list[float], b: list[float], q: float
) -> None:
    merged = LatencySketch.merged([LatencySketch.of(a), LatencySketch.of(b)])
    exact = nearest_rank(sorted(a + b), q)
    found = merged.quantile(q)
    assert found is not None
    if abs(exact) <= 0.001:
        assert abs(found) <= 0.001
    else:
        assert abs(found - exact) <= RELATIVE_ERROR * abs(exact) * 1.0000001


def test_a_sketch_survives_its_json() -> None:
    sketch = LatencySketch.of([0.0, 0.5, 12.0, -30.0, 12.0])
    again = LatencySketch.from_json(sketch.to_json())
    assert again.counts == sketch.counts and again.count == 5
    assert LatencySketch.from_json("").quantile(0.5) is None
