"""Incidents: devices in a lasting bad state, so a town always has alerts that stay open."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from pydantic import ValidationError

from simulators.scenario import (
    DEFAULT_SCENARIO,
    FLAT_BATTERY,
    Scenario,
    build_fleet,
    load_scenario,
)
from tests.unit.simulators.helpers import decode, run, town


def with_incidents(**incidents: object) -> Scenario:
    scenario = town()
    return scenario.model_validate(scenario.model_dump() | {"incidents": incidents})


def test_the_default_town_has_a_flat_battery_and_a_silent_sensor() -> None:
    fleet = build_fleet(load_scenario(DEFAULT_SCENARIO))
    assert [d.device_id for d in fleet if d.flat_battery] == ["bin-002"]
    assert [(d.device_id, d.silent_from) for d in fleet if d.silent_from] == [("noise-004", 1200.0)]


def test_a_flat_battery_reads_low_in_every_message_and_the_log_expects_an_alert() -> None:
    scenario = with_incidents(flat_battery=["bin-002"])
    items = [i for i in run(scenario, hours=3) if i.message and i.message.device_id == "bin-002"]
    assert len(items) >= 11  # every 15 minutes
    for item in items:
        assert item.message is not None
        levels = [
            r.value
            for r in decode(scenario, item.message).readings
            if r.quantity == "battery_level"
        ]
        assert levels == [FLAT_BATTERY]
        records = [r for r in item.records if r.fault == "flat_battery"]
        assert [r.expect for r in records] == ["alert:low_battery"]


def test_a_silent_device_stops_for_good_after_its_time_and_says_so_once() -> None:
    scenario = with_incidents(silent={"noise-004": "20m"})
    items = run(scenario, hours=3)
    sent = sorted(i.due for i in items if i.message and i.message.device_id == "noise-004")
    assert sent and sent[-1] - sent[0] < timedelta(minutes=20)
    assert len(sent) == 20  # one a minute
    records = [r for i in items for r in i.records if r.fault == "silent"]
    assert [(r.device_id, r.expect) for r in records] == [("noise-004", "alert:stale")]
    assert records[0].observed_at - sent[0] == timedelta(minutes=20)


def test_incidents_leave_the_other_devices_alone() -> None:
    def counts(scenario: Scenario) -> Counter[str]:
        return Counter(i.message.device_id for i in run(scenario, hours=2) if i.message)

    clean, troubled = (
        counts(town()),
        counts(with_incidents(flat_battery=["bin-002"], silent={"noise-004": "20m"})),
    )
    assert troubled["noise-004"] < clean["noise-004"]
    del clean["noise-004"], troubled["noise-004"]
    assert troubled == clean


@pytest.mark.parametrize(
    ("incidents", "message"),
    [
        ({"flat_battery": ["bin-099"]}, "does not have"),
        ({"silent": {"nobody-001": "5m"}}, "does not have"),
        ({"flat_battery": ["air-001"]}, "without a battery"),
        ({"silent": {"noise-001": "soon"}}, "duration"),
    ],
)
def test_a_scenario_names_only_devices_it_has(incidents: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        with_incidents(**incidents)


def test_a_flat_battery_needs_a_format_that_carries_the_battery() -> None:
    scenario = with_incidents(flat_battery=["climate-001"])  # Cayenne LPP: no battery level
    with pytest.raises(ValueError, match="carries no battery level"):
        build_fleet(scenario)
