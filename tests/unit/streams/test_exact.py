"""Exact sums: whatever the order and however they are split and merged, fsum of the values."""

import itertools
import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.exact import SliceSums, add_all_exact, add_exact, exact_total, merge_exact

# Finite floats of any magnitude that cannot overflow when a few hundred are added.
finite = st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False)
sensor_like = st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 2))


def test_the_classic_case_naive_summing_gets_wrong() -> None:
    values = [1e16, 1.0, -1e16] * 3 + [0.1] * 10
    partials: list[float] = []
    for value in values:
        add_exact(partials, value)
    assert sum(values) != math.fsum(values)
    assert exact_total(partials) == math.fsum(values) == 4.0


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(finite, sensor_like), min_size=1, max_size=200), st.integers(0, 2**32))
def test_the_mean_equals_fsum_over_count_in_any_order_and_runs(
    values: list[float], seed: int
) -> None:
    rng = random.Random(seed)
    order = values[:]
    rng.shuffle(order)
    partials: list[float] = []
    at = 0
    while at < len(order):  # one value at a time, or a batch's run of a window at once
        run = rng.randint(1, 5)
        if run == 1:
            add_exact(partials, order[at])
        else:
            add_all_exact(partials, order[at : at + run])
        at += run
    assert exact_total(partials) / len(values) == math.fsum(values) / len(values)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(finite, sensor_like), min_size=1, max_size=200), st.integers(0, 2**32))
def test_sums_kept_apart_then_merged_are_exact(values: list[float], seed: int) -> None:
    rng = random.Random(seed)
    parts: list[list[float]] = [[] for _ in range(rng.randint(1, 5))]
    for value in values:  # e.g. the sensors of a district, each with its own window sum
        add_exact(rng.choice(parts), value)
    merged: list[float] = []
    for part in parts:
        merge_exact(merged, part)
    assert exact_total(merged) == math.fsum(values)
    assert exact_total(p for part in parts for p in part) == math.fsum(values)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(finite, sensor_like), min_size=1, max_size=120), st.integers(0, 2**32))
def test_slice_sums_are_exact_however_the_slices_are_asked_for(
    values: list[float], seed: int
) -> None:
    # As the windows of three sizes ask: the small slices first and the large ones made of
    # them, but also slices that straddle, repeat or come in any order.
    rng = random.Random(seed)
    sums = SliceSums(values)
    for _ in range(12):
        start = rng.randrange(len(values))
        end = rng.randint(start + 1, len(values))
        got = sums.of(start, end)
        assert exact_total(got) == math.fsum(values[start:end])
        got.append(1e300)  # the caller's to change: the next answers must not see it
    cuts = sorted({0, len(values), *rng.sample(range(len(values) + 1), min(5, len(values)))})
    for a, b in itertools.pairwise(cuts):
        assert exact_total(sums.of(a, b)) == math.fsum(values[a:b])
    assert exact_total(sums.of(0, len(values))) == math.fsum(values)
