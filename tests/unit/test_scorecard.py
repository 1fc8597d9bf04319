"""The scorecard: components, weights, comparability, and the worst sensors first."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from urbanpulse.kpi import Indicators
from urbanpulse.scorecard import (
    ScoreRules,
    components,
    pooled_score,
    rank_sensors,
    sensor_score,
    weighted_score,
)
from urbanpulse.settings import KpiSettings, ScoreWeights, Settings

DAY = datetime(2026, 11, 25, tzinfo=UTC)


def sensor(subject: str = "s", **values: object) -> Indicators:
    base: dict[str, object] = {
        "tenant": "t",
        "scope": "sensor",
        "subject": subject,
        "period": "day",
        "start": DAY,
        "end": DAY.replace(day=26),
        "evaluated_at": DAY.replace(day=26),
        "complete": True,
        "interval_s": 300.0,
        "expected": 288,
        "reports": 288,
        "slots": 288,
        "readings": 576,
        "data_readings": 288,
        "completeness": 1.0,
        "uptime": 1.0,
        "latency_p50_s": 1.0,
        "latency_p95_s": 2.0,
        "since_last_s": 100.0,
    }
    return Indicators.model_validate(base | values)


def test_a_perfect_sensor_scores_100_and_each_flaw_costs_its_weight() -> None:
    rules = ScoreRules()
    assert sensor_score(sensor(), rules)[0] == 100.0
    half = sensor(completeness=0.5, reports=144, slots=144, uptime=0.5)
    # battery unknown: weights 0.3 + 0.2 lose half of their 0.5 out of 0.95
    assert sensor_score(half, rules)[0] == pytest.approx(100 * (1 - 0.25 / 0.95))
    slow = sensor(latency_p95_s=1830.0)  # half-way between 60 s and 3600 s
    assert components(slow, rules)["latency"] == pytest.approx(0.5)
    flat = sensor(battery_pct=20.0)  # half-way between 10 % and 30 %
    assert components(flat, rules)["battery"] == pytest.approx(0.5)
    stale = sensor(since_last_s=901.0)  # more than 3 x 300 s
    assert components(stale, rules)["freshness"] == 0.0
    assert components(sensor(since_last_s=900.0), rules)["freshness"] == 1.0


def test_weights_are_configurable_and_only_their_ratios_matter() -> None:
    parts = {"completeness": 0.0, "uptime": 1.0}
    assert weighted_score(parts, ScoreWeights(completeness=1, uptime=1)) == 50.0
    assert weighted_score(parts, ScoreWeights(completeness=2, uptime=2)) == 50.0
    assert weighted_score(parts, ScoreWeights(completeness=0, uptime=1)) == 100.0
    assert weighted_score({}, ScoreWeights()) is None
    settings = Settings(kpis=KpiSettings(weights=ScoreWeights(completeness=3)))
    assert ScoreRules.of(settings).weights.completeness == 3


def test_thresholds_must_make_sense() -> None:
    with pytest.raises(ValueError, match="latency_bad_s"):
        KpiSettings(latency_good_s=100, latency_bad_s=50)
    with pytest.raises(ValueError, match="battery_ok_pct"):
        KpiSettings(battery_low_pct=40, battery_ok_pct=30)
    with pytest.raises(ValueError):
        KpiSettings(timezone="Mars/Olympus")


def test_a_tenant_is_the_mean_of_its_sensors_whatever_their_rates() -> None:
    score, means = pooled_score([(100.0, {"uptime": 1.0}), (50.0, {"uptime": 0.0}), (None, {})])
    assert score == 75.0 and means == {"uptime": 0.5}


def test_the_worst_sensors_come_first_with_what_hurts_most() -> None:
    rules = ScoreRules()

    def scored(ind: Indicators) -> Indicators:
        value, parts = sensor_score(ind, rules)
        return ind.model_copy(update={"score": value, "components": parts})

    fine = scored(sensor("fine"))
    silent = scored(sensor("silent", completeness=0.2, uptime=0.2, reports=58, slots=58))
    flagged = scored(sensor("flagged", flagged=300))
    district = fine.model_copy(update={"scope": "district", "score": 0.0})
    ranked = rank_sensors([fine, district, flagged, silent], limit=2)
    assert [(r.rank, r.sensor_id) for r in ranked] == [(1, "silent"), (2, "flagged")]
    assert ranked[0].weakest == "completeness" and ranked[1].weakest == "quality"
    assert len(rank_sensors([fine, silent, flagged], limit=None)) == 3


def test_the_weights_table_of_the_docs_is_the_settings() -> None:
    from tests.conftest import REPO

    text = (REPO / "docs" / "kpis.md").read_text()
    block = text[text.index("| component | value | default weight |") :].split("\n\n", 1)[0]
    rows = [line.strip("|").split("|") for line in block.splitlines()[2:]]
    documented = {r[0].strip().replace(" ", "_"): float(r[-1]) for r in rows}
    assert documented == ScoreWeights().model_dump()
