"""Experiments in the registry file: what a valid one is, its design, its groups and sides."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from urbanpulse.experiment_registry import (
    ExperimentDefinition,
    candidates,
    group_members,
    intervals_of,
    parse_experiments,
    side_plans,
    with_experiments,
)
from urbanpulse.registry import RegistryError, parse_registry

REGISTRY = """
sensors:
  - {tenant: demo, sensor_id: noise-1, district: centrum, interval_s: 60}
  - {tenant: demo, sensor_id: noise-2, district: centrum}
  - {tenant: demo, sensor_id: noise-3, district: oost, interval_s: 60}
  - {tenant: demo, sensor_id: noise-4, district: centrum, privacy: restricted}
  - {tenant: other, sensor_id: noise-9, district: centrum}
experiments:
  - id: school-street
    name: School street
    tenant: demo
    quantity: noise_level
    treated: {district: centrum}
    control: {district: oost}
    before: {from: 2026-11-01T00:00:00Z, to: 2026-11-20T07:00:00Z}
    after: {from: 2026-11-20T07:00:00Z}
  - id: bus-lane
    name: Bus lane
    tenant: demo
    quantity: no2
    treated: {sensors: [air-1]}
    control: {sensors: [air-2, air-3]}
    period: {from: 2026-11-01T00:00:00Z, to: 2026-11-08T00:00:00Z}
    method: bootstrap
"""
BASE = {
    "id": "x",
    "name": "X",
    "tenant": "demo",
    "quantity": "noise_level",
    "treated": {"district": "centrum"},
    "before": {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"},
    "after": {"from": "2026-11-02T00:00:00Z"},
}


def test_a_registry_holds_experiments_beside_its_sensors() -> None:
    found = parse_experiments(REGISTRY, "yaml")
    assert sorted(found) == ["bus-lane", "school-street"]
    school, bus = found["school-street"], found["bus-lane"]
    assert school.design == "difference_in_differences" and school.method == "welch"
    assert school.after is not None and school.after.end is None
    assert bus.design == "treated_vs_control" and bus.method == "bootstrap"
    assert len(parse_registry(REGISTRY, "yaml")) == 5  # the sensors are read as before
    assert parse_experiments("tenant,sensor_id\ndemo,a\n", "csv") == {}
    assert parse_experiments("- {tenant: demo, sensor_id: a}", "yaml") == {}


def test_without_a_control_it_is_before_and_after() -> None:
    assert ExperimentDefinition.model_validate(BASE).design == "before_after"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"quantity": "battery_level"}, "not open data"),
        ({"quantity": "no_such_thing"}, "no_such_thing"),
        ({"treated": {"district": "a", "sensors": ["s"]}}, "either"),
        ({"treated": {}}, "either"),
        ({"before": {"from": "2026-11-01T00:30:00Z", "to": "2026-11-02T00:00:00Z"}}, "whole hour"),
        ({"before": {"from": "2026-11-03T00:00:00Z", "to": "2026-11-02T00:00:00Z"}}, "after"),
        ({"before": {"from": "2026-11-01T00:00:00Z"}}, "by the time"),
        ({"after": None}, "give `before` and `after`"),
        ({"before": None, "after": None, "period": BASE["before"]}, "name a control"),
        ({"control": {"district": "centrum"}}, "same district"),
        ({"treated": {"sensors": ["a", "b"]}, "control": {"sensors": ["b"]}}, "both"),
        ({"treated": {"sensors": ["a", "a"]}}, "twice"),
        ({"id": "a/b"}, "id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_what_is_refused_and_why(change: dict[str, object], message: str) -> None:
    document = {k: v for k, v in (BASE | change).items() if v is not None}
    with pytest.raises(ValueError, match=message):
        ExperimentDefinition.model_validate(document)


def test_an_invalid_experiment_or_a_repeated_id_names_its_place() -> None:
    with pytest.raises(RegistryError, match="experiment 1"):
        parse_experiments("experiments:\n  - {id: x}\n", "yaml")
    twice = yaml.safe_dump({"experiments": [BASE, BASE]})
    with pytest.raises(RegistryError, match="used twice"):
        parse_experiments(twice, "yaml")
    with pytest.raises(RegistryError, match="a list"):
        parse_experiments("experiments: {x: 1}", "yaml")


def test_writing_experiments_keeps_the_sensors_and_reads_back_the_same() -> None:
    found = parse_experiments(REGISTRY, "yaml")
    extra = ExperimentDefinition.model_validate(BASE)
    text = with_experiments(REGISTRY, found | {"x": extra})
    assert parse_registry(text, "yaml") == parse_registry(REGISTRY, "yaml")
    assert parse_experiments(text, "yaml") == found | {"x": extra}
    assert "from: '2026-11-20T07:00:00Z'" in text and "method" not in extra.as_document()
    bare = with_experiments("- {tenant: demo, sensor_id: a}\n", {"x": extra})
    assert len(parse_registry(bare, "yaml")) == 1 and list(parse_experiments(bare, "yaml")) == ["x"]
    assert "experiments" not in with_experiments(text, {})


def test_groups_sides_and_intervals() -> None:
    registry = parse_registry(REGISTRY, "yaml")
    school = parse_experiments(REGISTRY, "yaml")["school-street"]
    # the restricted sensor and the other tenant's are never in a group
    assert candidates(school, registry) == {"noise-1", "noise-2", "noise-3"}
    assert school.control is not None
    treated = group_members(school.treated, "demo", registry, reporting={"noise-1"})
    control = group_members(school.control, "demo", registry, reporting={"noise-3"})
    assert (treated, control) == ({"noise-1"}, {"noise-3"})
    named = ExperimentDefinition.model_validate(BASE | {"treated": {"sensors": ["noise-4", "z"]}})
    assert group_members(named.treated, "demo", registry, reporting=set()) == {"z"}
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    plans = side_plans(school, treated, control, now)
    assert [p.name for p in plans] == [
        "treated before",
        "treated after",
        "control before",
        "control after",
    ]
    assert plans[1].start == datetime(2026, 11, 20, 7, tzinfo=UTC) and plans[1].end == now
    assert plans[2].sensors == {"noise-3"}
    before_after = ExperimentDefinition.model_validate(BASE)
    assert [p.name for p in side_plans(before_after, treated, frozenset(), now)] == [
        "treated after",
        "treated before",
    ]
    early = side_plans(before_after, treated, frozenset(), datetime(2026, 10, 1, tzinfo=UTC))
    assert all(p.end == p.start for p in early)  # not begun yet: empty sides
    assert intervals_of(["noise-1", "noise-2", "z"], "demo", registry, 300.0) == {
        "noise-1": 60.0,
        "noise-2": 300.0,
        "z": 300.0,
    }
