"""Indicator maths against hand-counted sensors: expectation, completeness, uptime and the rest."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.kpis.indicators import (
    Evaluation,
    Result,
    SensorObservations,
    infer_interval_s,
    pooled_indicators,
    sensor_indicators,
    slots,
    to_us,
    week_of_days,
)
from streams.kpis.periods import week_span
from tests.unit.streams.kpis.helpers import DAY, UTC_ZONE, at, evaluation, on_grid, span
from urbanpulse.kpi import Indicators
from urbanpulse.registry import SensorInfo

NOW = at(11)  # 11:00 on the day
AIR = ("pm2_5", "pm10", "no2", "o3")
REGISTERED = SensorInfo(tenant="t", sensor_id="s", district="centre", interval_s=300)


def indicators(
    observed: SensorObservations | None,
    *,
    info: SensorInfo | None = REGISTERED,
    carry: Indicators | None = None,
    letters: Counter[str] | None = None,
    ev: Evaluation | None = None,
) -> Indicators:
    return sensor_indicators(
        tenant="t",
        sensor_id="s",
        observed=observed,
        info=info,
        carry=carry,
        letters=letters or Counter(),
        ev=ev or evaluation(NOW),
    ).indicators


def test_a_sensor_that_reports_every_interval_since_its_first_report_is_complete() -> None:
    # 08:02, 08:07, ... up to 10:57: 36 reports before 11:00
    ind = indicators(on_grid(first=at(8 + 2 / 60), interval_s=300, count=36, quantities=AIR))
    assert (ind.expected, ind.reports, ind.slots, ind.readings) == (36, 36, 36, 144)
    assert ind.completeness == ind.uptime == 1.0
    assert ind.interval_source == "registry" and not ind.interval_inferred
    assert ind.first_seen == at(8 + 2 / 60)
    assert ind.since_last_s == 180.0  # 10:57 to 11:00
    assert ind.score == 100.0


def test_a_sensor_that_stops_loses_completeness_uptime_and_freshness() -> None:
    ind = indicators(on_grid(first=at(8 + 2 / 60), interval_s=300, count=10))
    assert (ind.expected, ind.reports, ind.slots) == (36, 10, 10)
    assert ind.completeness == pytest.approx(10 / 36, abs=1e-6)
    assert ind.since_last_s == (NOW - at(8 + 47 / 60)).total_seconds()
    assert ind.components["freshness"] == 0.0
    # weights 0.3 completeness, 0.2 uptime, 0.2 quality, 0.05 latency, 0.1 dead letters, 0.1
    # freshness; no battery: its 0.05 drops out of the denominator
    expected_score = 100 * (0.5 * 10 / 36 + 0.2 + 0.05 + 0.1 + 0.0) / 0.95
    assert ind.score == pytest.approx(expected_score, abs=0.01)


def test_intermittent_reports_are_counted_one_by_one() -> None:
    ind = indicators(on_grid(first=at(8 + 2 / 60), interval_s=300, count=36, skip={3, 7, 8, 20}))
    assert (ind.expected, ind.reports, ind.slots) == (36, 32, 32)


def test_a_sensor_known_before_is_expected_from_midnight_on_its_own_grid() -> None:
    carry = indicators(on_grid(first=at(-10), interval_s=300, count=3), ev=evaluation(at(0)))
    # silent until 02:02, then every 5 minutes: 24 slots (00:02 ... 01:57) went empty
    ind = indicators(on_grid(first=at(2 + 2 / 60), interval_s=300, count=108), carry=carry)
    assert (ind.expected, ind.reports, ind.slots) == (132, 108, 108)
    assert ind.first_seen == carry.first_seen


def test_a_registered_sensor_that_never_reported_is_expected_all_day_and_scores_zero() -> None:
    ind = indicators(None)
    assert (ind.expected, ind.reports, ind.completeness, ind.uptime) == (132, 0, 0.0, 0.0)
    assert ind.latency_p50_s is None and ind.since_last_s is None and ind.first_seen is None
    assert ind.score == 0.0
    assert set(ind.components) == {"completeness", "uptime", "freshness"}


def test_reporting_twice_per_interval_is_complete_twice_over_but_up_once() -> None:
    first = on_grid(first=at(8 + 2 / 60), interval_s=300, count=36)
    for t in list(first.report_us):
        first.add_reading(t + 10_000_000, t + 10_000_000, "noise_level")
    ind = indicators(first)
    assert (ind.reports, ind.slots, ind.completeness, ind.uptime) == (72, 36, 2.0, 1.0)
    assert ind.components["completeness"] == 1.0  # the scorecard caps it


def test_an_unregistered_sensor_gets_its_median_gap_marked_inferred() -> None:
    observed = on_grid(first=at(9), interval_s=60, count=120, skip={5, 6, 7, 50})
    ind = indicators(observed, info=None)
    assert (ind.interval_s, ind.interval_source, ind.interval_inferred) == (60.0, "inferred", True)
    assert ind.expected == 120 and ind.reports == 116
    assert ind.district is None


def test_too_few_reports_to_infer_from_fall_back_to_the_carried_or_default_interval() -> None:
    two = on_grid(first=at(9), interval_s=60, count=2)
    assert indicators(two, info=None).interval_source == "default"
    assert indicators(two, info=None).interval_s == 300.0
    carry = indicators(on_grid(first=at(-3), interval_s=120, count=20), info=None)
    assert carry.interval_s == 120.0
    kept = indicators(two, info=None, carry=carry)
    assert (kept.interval_s, kept.interval_source) == (120.0, "inferred")


def test_latency_percentiles_are_exact_by_nearest_rank() -> None:
    observed = SensorObservations(tenant="t", sensor_id="s")
    for k in range(100):
        observed.add_reading(
            to_us(at(9)) + k * 300_000_000, to_us(at(9)) + k * 301_000_000, "noise_level"
        )
    ind = indicators(observed)  # latencies 0, 1, ..., 99 s
    assert (ind.latency_p50_s, ind.latency_p95_s) == (49.0, 94.0)


def test_flag_shares_count_each_flag_and_the_score_counts_scored_flags_once() -> None:
    observed = on_grid(
        first=at(9), interval_s=300, count=10, quantities=("noise_level", "occupancy", "rssi")
    )
    scored = frozenset({"stuck", "gap"})
    for flags, quantity in (
        (["stuck"], "noise_level"),
        (["stuck", "gap"], "noise_level"),
        (["unregistered"], "noise_level"),
        (["gap", "gap"], "noise_level"),
        (["stuck"], "rssi"),  # the radio: counted in the shares, not against the data
        (["stuck"], "occupancy"),  # a free parking space may well hold still
        (["stuck", "gap"], "occupancy"),  # but not skip reports
    ):
        observed.add_flags(flags, scored, quantity)
    ind = indicators(observed)
    assert (ind.readings, ind.data_readings) == (30, 20)
    assert ind.flag_counts == {"gap": 3, "stuck": 5, "unregistered": 1}
    assert ind.flag_shares == {
        "gap": 0.1,
        "stuck": round(5 / 30, 6),
        "unregistered": round(1 / 30, 6),
    }
    assert ind.flagged == 4
    assert ind.components["quality"] == pytest.approx(1 - 4 / 20)


def test_dead_letters_and_battery() -> None:
    observed = on_grid(first=at(9), interval_s=300, count=20)
    observed.add_battery(to_us(at(9)), 40.0)
    observed.add_battery(to_us(at(10)), 8.0)
    observed.add_battery(to_us(at(9.5)), 30.0)  # older than the latest: ignored
    ind = indicators(observed, letters=Counter({"out_of_range": 4, "invalid_json": 1}))
    assert (ind.dead_letters, ind.dead_letter_reasons) == (
        5,
        {"invalid_json": 1, "out_of_range": 4},
    )
    assert (ind.battery_pct, ind.battery_at, ind.battery_low_sensors) == (8.0, at(10), 1)
    assert ind.components["battery"] == 0.0
    assert ind.components["dead_letters"] == pytest.approx(1 - 5 / 25)
    silent = indicators(None, carry=ind)
    assert (silent.battery_pct, silent.battery_at) == (8.0, at(10))  # carried over


def test_a_closed_day_counts_to_midnight_and_says_so() -> None:
    ev = evaluation(at(30))  # the next day, 06:00
    ind = indicators(on_grid(first=at(22), interval_s=300, count=24), ev=ev)
    assert ind.complete and ind.expected == 24 and ind.completeness == 1.0
    assert ind.since_last_s == 300.0  # from 23:55 to midnight


@given(
    interval=st.sampled_from([60, 150, 300, 900]),
    phase=st.integers(min_value=0, max_value=899),
    hours=st.floats(min_value=0.3, max_value=24),
    jitter=st.floats(min_value=-0.49, max_value=0.0),
    known_before=st.booleans(),
)
def test_a_sensor_on_its_grid_fills_every_slot_after_its_first_report(
    interval: int, phase: int, hours: float, jitter: float, known_before: bool
) -> None:
    """Property: wherever the grid and the end fall, a sensor that never misses fills one slot
    per report, also with every other report early by up to half an interval; a sensor known
    before is also expected in the slots before its first report, which stay empty."""
    step = interval * 1_000_000
    start = to_us(at(0))
    end = start + round(hours * 3_600_000_000)
    first = start + (phase % interval) * 1_000_000
    ticks = [first + k * step for k in range((end - first) // step + 1) if first + k * step < end]
    reports = [t + round(jitter * step) if k % 2 else t for k, t in enumerate(ticks)]
    grid = slots(reports, start if known_before else first, end, interval)
    assert grid.with_data == len(ticks)
    assert grid.expected == len(ticks) + ((first - start) // step if known_before else 0)


def test_infer_interval_needs_three_reports() -> None:
    assert infer_interval_s([0, 60_000_000]) is None
    assert infer_interval_s([0, 60_000_000, 120_000_000, 600_000_000]) == 60.0


def _day_result(day_offset: int, reports: int, letters: int = 0) -> Result:
    day = DAY + timedelta(days=day_offset)
    ev = evaluation(at(48, day), span(day))
    observed = on_grid(first=at(0, day), interval_s=3600, count=reports, latency_s=day_offset + 1)
    return sensor_indicators(
        tenant="t",
        sensor_id="s",
        observed=observed,
        info=SensorInfo(tenant="t", sensor_id="s", district="centre", interval_s=3600),
        carry=None,
        letters=Counter({"invalid_json": letters}),
        ev=ev,
    )


def test_a_week_adds_up_its_days() -> None:
    days = [_day_result(0, 24), _day_result(1, 12)]
    week = week_span(DAY, UTC_ZONE)
    ev = evaluation(at(24 * 10), week)
    ind = week_of_days(days, letters=Counter({"invalid_json": 3}), ev=ev, info=None).indicators
    assert (ind.period, ind.start, ind.expected, ind.reports) == ("week", week.start, 48, 36)
    assert ind.completeness == 0.75 and ind.dead_letters == 3 and ind.district == "centre"
    assert ind.latency_p50_s == pytest.approx(1.0, rel=0.01)  # 24 at 1 s, 12 at 2 s
    assert ind.latency_p95_s == pytest.approx(2.0, rel=0.01)


def test_a_district_pools_counts_and_averages_scores() -> None:
    good, bad = _day_result(0, 24), _day_result(0, 6)
    pooled = pooled_indicators(
        tenant="t",
        scope="district",
        subject="centre",
        members=[good, bad],
        letters=Counter({"invalid_json": 2}),
        ev=evaluation(at(48), span()),
    ).indicators
    assert (pooled.sensors, pooled.expected, pooled.reports) == (2, 48, 30)
    assert pooled.completeness == pytest.approx(30 / 48, abs=1e-6)
    assert good.indicators.score is not None and bad.indicators.score is not None
    assert pooled.score == pytest.approx((good.indicators.score + bad.indicators.score) / 2, 0.01)
    assert pooled.dead_letters == 2 and pooled.district == "centre"
