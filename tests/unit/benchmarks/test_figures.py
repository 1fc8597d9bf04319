"""Percentiles, rates and budget verdicts of the benchmarks."""

import math

import pytest

from benchmarks.figures import Timing, cpu_per_thousand, over_budget, per_second, percentile


def test_percentile_is_nearest_rank_of_the_measured_values() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(list(reversed(values)), 50) == 50  # order does not matter


def test_p99_of_few_samples_is_the_worst_and_counts_infinity() -> None:
    assert percentile([3.0, 1.0, 2.0], 99) == 3.0
    assert percentile([1.0, 2.0, math.inf], 99) == math.inf  # a missing probe
    assert percentile([5.0], 50) == 5.0


def test_percentile_of_nothing_is_none_and_p_must_be_a_percentage() -> None:
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 0)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_rates_and_cpu_per_thousand() -> None:
    assert per_second(1500, 60) == 25
    assert per_second(10, 0) == 0
    assert cpu_per_thousand(3.0, 20_000) == pytest.approx(0.15)
    assert cpu_per_thousand(3.0, 0) is None


def test_timing_best_and_median() -> None:
    timing = Timing((12.0, 10.0, 30.0))
    assert timing.best == 10.0
    assert timing.median == 12.0


def test_budget_verdict_with_factor() -> None:
    assert over_budget(21.0, 20.0)
    assert not over_budget(20.0, 20.0)
    assert not over_budget(39.0, 20.0, factor=2)
    assert not over_budget(1e9, None)  # no budget: never over
    with pytest.raises(ValueError):
        over_budget(1.0, 1.0, factor=0)
