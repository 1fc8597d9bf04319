"""Sensor failures (intermittent, stuck, garbage, silent at a time) and interventions, with their
ground truth: what is sent matches what the log says, so the indicators can be checked exactly."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from pydantic import ValidationError

from simulators.faults import FaultRecord, Outgoing
from simulators.scenario import Scenario, build_fleet
from streams.quality import out_of_range
from tests.unit.simulators.helpers import START, decode, run, town

HOURS = 3


def scenario_with(**changes: object) -> Scenario:
    scenario = town()
    return scenario.model_validate(scenario.model_dump(by_alias=True) | changes)


def of_device(items: list[Outgoing], device: str) -> list[Outgoing]:
    return [i for i in items if i.message is not None and i.message.device_id == device]


def records(items: list[Outgoing], fault: str) -> list[FaultRecord]:
    return [r for i in items for r in i.records if r.fault == fault]


def test_an_intermittent_sensor_loses_its_share_of_reports_after_its_onset() -> None:
    scenario = scenario_with(incidents={"intermittent": {"noise-001": {"rate": 0.3, "from": "1h"}}})
    items = run(scenario, hours=HOURS)
    sent = of_device(items, "noise-001")
    lost = [r for r in records(items, "intermittent") if r.expect == "absent"]
    assert len(sent) + len(lost) == HOURS * 60  # one report a minute, each sent or lost
    first = sent[0].due
    assert all(r.observed_at >= first + timedelta(hours=1) for r in lost)
    assert 0.3 * 120 - 3 * (120 * 0.21) ** 0.5 <= len(lost) <= 0.3 * 120 + 3 * (120 * 0.21) ** 0.5
    gaps = [r for r in records(items, "intermittent") if r.expect != "absent"]
    for record in gaps:  # the first report after losses says how long the gap was
        gap_s = record.detail["gap_s"]
        assert record.expect == ("flag:gap" if gap_s > 3 * 60 else "undetectable")
    after_last = sum(1 for r in lost if r.observed_at > sent[-1].due)  # no report follows them
    assert sum(r.detail["missing"] for r in gaps) + after_last == len(lost)


def test_a_stuck_sensor_repeats_its_last_values_and_the_log_says_when_the_flag_is_due() -> None:
    scenario = scenario_with(incidents={"stuck": {"noise-001": "1h"}})
    sent = of_device(run(scenario, hours=HOURS), "noise-001")
    onset = sent[0].due + timedelta(hours=1)
    before = [i for i in sent if i.due < onset]
    after = [i for i in sent if i.due >= onset]
    last = decode(scenario, before[-1].message).readings[0].value  # type: ignore[arg-type]
    for n, item in enumerate(after, start=2):  # the last value before is the first of the run
        assert item.message is not None
        assert [r.value for r in decode(scenario, item.message).readings] == [last]
        (record,) = [r for r in item.records if r.fault == "stuck"]
        assert record.detail["repeat"] == {"noise_level": n}
        assert record.expect == ("flag:stuck" if n >= 10 else "none yet (repeat < 10)")


def test_a_garbage_sensor_sends_values_the_platform_must_refuse_in_every_format() -> None:
    garbage = {"noise-001": "1h", "climate-001": "1h", "weather-001": "1h", "parking-001": "1h"}
    scenario = scenario_with(incidents={"garbage": garbage})
    items = run(scenario, hours=HOURS)
    fleet = {d.device_id: d for d in build_fleet(scenario)}
    for device in garbage:
        sent = of_device(items, device)
        onset = sent[0].due + timedelta(hours=1)
        assert any(i.due >= onset for i in sent)
        for item in sent:
            assert item.message is not None
            readings = decode(scenario, item.message).readings
            main = {q.quantity for q in fleet[device].kind.quantities}
            refused = {r.quantity for r in readings if out_of_range(r) is not None}
            if item.due < onset:
                assert not refused and not [r for r in item.records if r.fault == "garbage"]
                continue
            (record,) = [r for r in item.records if r.fault == "garbage"]
            assert record.expect == "dead_letter:out_of_range"
            assert refused == set(record.detail["sent"]) == main  # every one has a range


def test_a_sensor_falls_silent_at_a_given_time() -> None:
    stop = START + timedelta(minutes=90)
    scenario = scenario_with(incidents={"silent": {"noise-002": stop.isoformat()}})
    items = run(scenario, hours=HOURS)
    sent = of_device(items, "noise-002")
    assert sent[-1].due < stop <= sent[-1].due + timedelta(minutes=1)
    (record,) = records(items, "silent")
    assert record.detail == {"from": stop.strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_an_intervention_shifts_the_treated_groups_values_from_its_start() -> None:
    district = build_fleet(town())[0].district
    intervention = {
        "name": "quiet-street",
        "quantity": "noise_level",
        "change": -3,
        "from": "1h",
        "district": district,
    }
    treated_scenario = scenario_with(interventions=[intervention])
    untreated = town()
    plain, treated = run(untreated, hours=HOURS), run(treated_scenario, hours=HOURS)
    (record,) = records(treated, "quiet-street")
    assert record.kind == "intervention" and record.expect == "effect:-3"
    start = START + timedelta(hours=1)
    assert record.observed_at == start
    fleet = build_fleet(untreated)
    noisy = [d for d in fleet if d.kind.name == "noise"]
    in_district = {d.sensor_id for d in noisy if d.district == district}
    assert set(record.detail["treated"]) == in_district
    assert set(record.detail["control"]) == {d.sensor_id for d in noisy} - in_district
    shifts: Counter[tuple[bool, bool, float]] = Counter()
    noise_devices = {d.device_id for d in noisy}
    for before, after in zip(
        [i for i in plain if i.message], [i for i in treated if i.message], strict=True
    ):
        assert before.message is not None and after.message is not None
        if before.message.device_id not in noise_devices:
            continue
        for a, b in zip(
            decode(untreated, before.message).readings,
            decode(treated_scenario, after.message).readings,
            strict=True,
        ):
            if a.quantity == "noise_level":
                shift = round(b.value - a.value, 1)
                shifts[(a.sensor_id in in_district, a.observed_at >= start, shift)] += 1
    assert {key for key in shifts if key[2] != 0} <= {(True, True, -3.0)}
    assert shifts[(True, True, -3.0)] > 0 and shifts[(True, False, 0.0)] > 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"interventions": [{"name": "x", "quantity": "noise_level", "change": 1, "from": "1h"}]},
         "district or devices"),
        ({"interventions": [{"name": "x", "quantity": "noise_level", "change": 1, "from": "1h",
                             "district": "atlantis"}]}, "no district"),
        ({"interventions": [{"name": "x", "quantity": "noise_level", "change": 1, "from": "1h",
                             "devices": ["noise-099"]}]}, "no such devices"),
        ({"interventions": [{"name": "x", "quantity": "radiation", "change": 1, "from": "1h",
                             "devices": ["noise-001"]}]}, "no device reports"),
        ({"incidents": {"stuck": {"noise-001": "1h"}, "garbage": {"noise-001": "2h"}}},
         "both stuck"),
        ({"incidents": {"intermittent": {"noise-001": {"rate": 1.5}}}}, "less than or equal"),
        ({"incidents": {"silent": {"noise-001": "2026-03-02T10:00:00"}}}, "time zone"),
    ],
)  # fmt: skip
def test_a_scenario_refuses_what_it_cannot_do(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        scenario_with(**changes)
