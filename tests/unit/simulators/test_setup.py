"""Scenario files, fleet, modes, registry, credentials and the CLI's setup."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from paho.mqtt.client import topic_matches_sub
from typer.testing import CliRunner

from ingest.routing import RoutingConfig, decode_message
from simulators.engine import load_stream, plan
from simulators.formats import Wire
from simulators.outputs import credential_files, registry_yaml, tenant_map
from simulators.scenario import (
    FORMATS,
    SCENARIOS,
    apportion,
    build_fleet,
    load_scenario,
)
from tests.unit.simulators.helpers import run
from urbanpulse.cli import app
from urbanpulse.credentials import INGEST_USER, parse_secrets
from urbanpulse.durations import parse_duration
from urbanpulse.mqtt_topics import SUPPORTED_TOPIC_FILTERS
from urbanpulse.registry import parse_registry


@pytest.mark.parametrize("name", ["town", "city"])
def test_bundled_scenarios_use_every_format_on_subscribed_topics(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    fleet = build_fleet(scenario)
    assert {d.format for d in fleet} == set(FORMATS)
    assert {d.kind.domain for d in fleet} == {
        "air",
        "noise",
        "traffic",
        "parking",
        "weather",
        "waste",
        "water",
        "people",
    }
    assert len({(d.sensor_id) for d in fleet}) == len(fleet)
    assert set(tenant_map(scenario, fleet).values()) == {scenario.tenant}
    assert scenario.faults.any()
    # every topic the simulator publishes on matches a filter the default ingestor subscribes to.
    # A topic is the device's (faults never change it): one longest reporting interval without
    # faults hears every device once, in a fraction of the time the city takes for an hour.
    quiet = scenario.model_validate(scenario.model_dump() | {"faults": {}, "incidents": {}})
    longest = max(d.interval_s for d in fleet) / 3600
    sent = [item.message for item in run(quiet, hours=longest) if item.message]
    assert {m.device_id for m in sent} == {d.device_id for d in fleet}
    for topic in {m.topic for m in sent}:
        assert any(topic_matches_sub(f, topic) for f in SUPPORTED_TOPIC_FILTERS), topic


def test_default_town_keeps_the_readme_sensor() -> None:
    fleet = build_fleet(load_scenario(SCENARIOS / "town.yaml"))
    assert next(d for d in fleet if d.sensor_id == "air-002").format == "json"


def test_apportion_and_durations() -> None:
    assert apportion(4, {"json": 2, "senml": 1, "chirpstack": 1}) == [
        "json",
        "json",
        "senml",
        "chirpstack",
    ]
    assert sorted(apportion(7, {"tts": 1, "chirpstack": 1})) == ["chirpstack"] * 3 + ["tts"] * 4
    assert (
        parse_duration("5m") == 300 and parse_duration("1.5h") == 5400 and parse_duration(30) == 30
    )
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_modes_put_event_times_in_the_right_place() -> None:
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    accelerated = plan("accelerated", now, 86400, 1440)
    assert accelerated.end == now + timedelta(seconds=60)  # a day in a minute, ending with the run
    backfill = plan("backfill", now, 3600, 1)
    assert (backfill.start, backfill.end, backfill.speed) == (now - timedelta(hours=1), now, None)
    assert plan("realtime", now, None, 1).end is None


def test_load_messages_carry_the_asked_number_of_distinct_readings() -> None:
    scenario = load_scenario(SCENARIOS / "town.yaml")
    fleet = build_fleet(scenario)
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    stream = load_stream(fleet, scenario.city(), Wire.of(scenario), 25, now, 200.0)
    items = [next(stream) for _ in range(50)]
    assert [i.due for i in items] == [now + timedelta(seconds=k / 200) for k in range(50)]
    for item in items:
        assert item.message is not None
        out = decode_message(item.message.topic, item.message.payload, now, 262_144)
        assert out.dead_letter is None and len(out.readings) == 25
        assert len({(r.quantity, r.observed_at) for r in out.readings}) == 25


def test_registry_round_trips_through_the_platform_parser() -> None:
    scenario = load_scenario(SCENARIOS / "town.yaml")
    fleet = build_fleet(scenario)
    registry = parse_registry(registry_yaml(scenario, fleet), "yaml")
    expected = {(scenario.tenant, s) for d in fleet for s in d.platform_sensor_ids()}
    assert set(registry) == expected
    people = [info for info in registry.values() if info.sensor_type == "people"]
    assert people and all(info.privacy == "personal" for info in people)
    lpp = [registry[(scenario.tenant, d.sensor_id)] for d in fleet if d.format == "lpp"]
    assert lpp and all(info.interval_s == 600 for info in lpp)


def test_credentials_for_devices_that_use_our_broker() -> None:
    scenario = load_scenario(SCENARIOS / "town.yaml")
    fleet = build_fleet(scenario)
    files = credential_files(scenario, fleet)
    users = set(parse_secrets(files["secrets.csv"]))
    direct = {
        f"demo/{d.device_id}"
        for d in fleet
        if d.format in ("json", "senml", "lpp", "sensorcommunity")
    }
    assert users == direct | {INGEST_USER}
    assert "topic write urbanpulse/demo/air-001/#" in files["acl"]
    again = credential_files(scenario, fleet, files["secrets.csv"])
    assert parse_secrets(again["secrets.csv"]) == parse_secrets(files["secrets.csv"])  # kept


def test_cli_setup_only_writes_registry_credentials_and_tenant_map(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--setup-only",
            "--tenant",
            "t1",
            "--registry-out",
            str(tmp_path / "registry.yaml"),
            "--credentials-dir",
            str(tmp_path / "creds"),
            "--tenant-map-out",
            str(tmp_path / "map.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    mapping = json.loads((tmp_path / "map.json").read_text())
    assert set(mapping.values()) == {"t1"} and "t1-sensors@ttn" in mapping
    config = RoutingConfig(tenant_by_application=mapping)
    assert config.tenant_for("t1-sensors@ttn") == "t1"
    registry = parse_registry((tmp_path / "registry.yaml").read_text(), "yaml")
    assert {t for t, _ in registry} == {"t1"}
    assert (tmp_path / "creds" / "passwords").read_text().startswith("urbanpulse-ingest:$7$")


def test_cli_refuses_unknown_faults_and_modes() -> None:
    runner = CliRunner()
    bad_fault = runner.invoke(app, ["simulate", "--setup-only", "--fault", "gremlins=0.1"])
    assert bad_fault.exit_code != 0
    bad_mode = runner.invoke(app, ["simulate", "--setup-only", "--mode", "warp"])
    assert bad_mode.exit_code != 0
