"""/v1/experiments and /v1/admin/experiments over a fake store and a registry file of a test."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from api.app import create_app
from tests.unit.api.fakes import NOW, FakeStore
from urbanpulse.experiment_registry import parse_experiments
from urbanpulse.experiments import HourlyMean
from urbanpulse.registry import parse_registry
from urbanpulse.settings import ApiSettings, KafkaSettings, Settings, StreamsSettings

KEY = "admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}
READ_KEY = "read-key-0123456789abcdef"  # a key of the read scope: a higher rate, nothing more
CHANGE = datetime(2026, 11, 24, tzinfo=UTC)
REGISTRY = """# the town's sensors
sensors:
  - {tenant: town, sensor_id: n1, district: centrum, interval_s: 60}
  - {tenant: town, sensor_id: n2, district: centrum, interval_s: 60}
  - {tenant: town, sensor_id: n3, district: oost, interval_s: 60}
  - {tenant: town, sensor_id: n4, district: oost, interval_s: 60}
  - {tenant: town, sensor_id: secret, district: centrum, privacy: restricted}
other_key: kept
"""
SCHOOL = {
    "id": "school-street",
    "name": "School street",
    "tenant": "town",
    "quantity": "noise_level",
    "treated": {"district": "centrum"},
    "control": {"district": "oost"},
    "before": {"from": "2026-11-22T00:00:00Z", "to": "2026-11-24T00:00:00Z"},
    "after": {"from": "2026-11-24T00:00:00Z"},
}


def hours() -> list[HourlyMean]:
    """Two days before and NOW - CHANGE after; centrum 3 dB quieter after; n4 half silent."""
    rng = random.Random(5)
    found = []
    start = CHANGE - timedelta(days=2)
    for sensor, level in (("n1", 60.0), ("n2", 62.0), ("n3", 55.0), ("n4", 57.0)):
        moment = start
        while moment < NOW:
            change = -3.0 if sensor in ("n1", "n2") and moment >= CHANGE else 0.0
            if not (sensor == "n4" and moment >= CHANGE and moment.hour % 2):
                found.append(
                    HourlyMean(
                        sensor_id=sensor,
                        start=moment,
                        mean=level + change + rng.gauss(0, 0.7),
                        count=60,
                    )
                )
            moment += timedelta(hours=1)
    return found


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(REGISTRY, encoding="utf-8")
    return path


def client_of(path: Path | None, store: FakeStore | None = None) -> TestClient:
    settings = Settings(
        api=ApiSettings(api_keys=[f"{KEY}:admin", READ_KEY], rate_anonymous_per_s=0),
        streams=StreamsSettings(registry_path=str(path) if path else ""),
        kafka=KafkaSettings(bootstrap="127.0.0.1:9"),
    )
    return TestClient(create_app(settings, store=store or FakeStore(), clock=lambda: NOW))


def test_an_admin_defines_an_experiment_in_the_registry_file(registry: Path) -> None:
    client = client_of(registry)
    created = client.post("/v1/admin/experiments", json=SCHOOL, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/admin/experiments/school-street"
    assert created.json()["before"]["from"] == "2026-11-22T00:00:00Z"
    text = registry.read_text(encoding="utf-8")
    assert parse_registry(text, "yaml") == parse_registry(REGISTRY, "yaml")
    assert yaml.safe_load(text)["other_key"] == "kept"
    assert list(parse_experiments(text, "yaml")) == ["school-street"]
    again = client.post("/v1/admin/experiments", json=SCHOOL, headers=ADMIN)
    assert again.status_code == 409 and "defined already" in again.json()["detail"]
    listed = client.get("/v1/admin/experiments", headers=ADMIN).json()["data"]
    assert [e["id"] for e in listed] == ["school-street"]
    one = client.get("/v1/admin/experiments/school-street", headers=ADMIN)
    assert one.json()["treated"] == {"sensors": [], "district": "centrum"}


def test_replace_and_remove(registry: Path) -> None:
    client = client_of(registry)
    assert client.post("/v1/admin/experiments", json=SCHOOL, headers=ADMIN).status_code == 201
    renamed = SCHOOL | {"name": "Quiet school street"}
    put = client.put("/v1/admin/experiments/school-street", json=renamed, headers=ADMIN)
    assert put.status_code == 200 and put.json()["name"] == "Quiet school street"
    text = registry.read_text(encoding="utf-8")
    assert parse_experiments(text, "yaml")["school-street"].name == "Quiet school street"
    wrong = client.put("/v1/admin/experiments/other", json=SCHOOL, headers=ADMIN)
    assert wrong.status_code == 422
    missing = client.put("/v1/admin/experiments/x", json=SCHOOL | {"id": "x"}, headers=ADMIN)
    assert missing.status_code == 404
    assert client.delete("/v1/admin/experiments/school-street", headers=ADMIN).status_code == 204
    assert client.delete("/v1/admin/experiments/school-street", headers=ADMIN).status_code == 404
    assert "experiments" not in yaml.safe_load(registry.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (SCHOOL | {"quantity": "battery_level"}, "not open data"),
        (SCHOOL | {"after": None}, "give `before` and `after`"),
        ({k: v for k, v in SCHOOL.items() if k != "tenant"}, "tenant"),
    ],
)
def test_an_invalid_definition_is_a_422_that_says_why(
    registry: Path, body: dict[str, object], message: str
) -> None:
    answer = client_of(registry).post("/v1/admin/experiments", json=body, headers=ADMIN)
    assert answer.status_code == 422 and message in answer.text
    assert "experiments" not in yaml.safe_load(registry.read_text(encoding="utf-8"))


def test_keys_csv_registries_and_no_registry(registry: Path, tmp_path: Path) -> None:
    client = client_of(registry)
    assert client.post("/v1/admin/experiments", json=SCHOOL).status_code == 401
    assert client.get("/v1/admin/experiments").status_code == 401
    read = {"X-API-Key": READ_KEY}
    assert client.post("/v1/admin/experiments", json=SCHOOL, headers=read).status_code == 403
    csv_registry = tmp_path / "registry.csv"
    csv_registry.write_text("tenant,sensor_id\ntown,n1\n", encoding="utf-8")
    refused = client_of(csv_registry).post("/v1/admin/experiments", json=SCHOOL, headers=ADMIN)
    assert refused.status_code == 409 and "YAML" in refused.json()["detail"]
    none = client_of(None).post("/v1/admin/experiments", json=SCHOOL, headers=ADMIN)
    assert none.status_code == 503
    assert client_of(None).get("/v1/experiments").json()["data"] == []


def test_the_answer_finds_the_effect_with_the_data_behind_each_side(registry: Path) -> None:
    store = FakeStore(hours=hours())
    client = client_of(registry, store)
    assert client.post("/v1/admin/experiments", json=SCHOOL, headers=ADMIN).status_code == 201
    listed = client.get("/v1/experiments", params={"tenant": "town"}).json()["data"]
    assert [(e["id"], e["links"]["answer"]) for e in listed] == [
        ("school-street", "/v1/experiments/school-street")
    ]
    answer = client.get("/v1/experiments/school-street")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["design"], body["method"], body["unit"]) == (
        "difference_in_differences",
        "welch",
        "dB",
    )
    assert body["low"] < -3.0 < body["high"] and body["low"] < body["estimate"] < body["high"]
    assert body["treated"] == {"district": "centrum", "sensors": ["n1", "n2"]}  # not "secret"
    assert body["control"]["sensors"] == ["n3", "n4"]
    sides = {s["name"]: s for s in body["sides"]}
    after_hours = int((NOW - CHANGE).total_seconds() // 3600)
    assert sides["treated before"]["values"] == 2 * 48
    assert sides["treated before"]["readings"] == 2 * 48 * 60
    assert sides["treated before"]["expected"] == 2 * 48 * 60
    assert sides["treated after"]["end"] == "2026-11-27T12:00:00Z"  # open: until now
    assert sides["control after"]["values"] == after_hours + after_hours // 2
    assert sides["control after"]["completeness"] == pytest.approx(0.75, abs=0.02)
    assert body["verdict"] == "incomplete"  # n4 sent half its hours after the change
    (asked,) = store.hourly_filters
    assert asked.sensors == ("n1", "n2", "n3", "n4") and asked.quantity == "noise_level"
    assert client.get("/v1/experiments/nope").status_code == 404


def test_an_experiment_without_data_says_so(registry: Path) -> None:
    client = client_of(registry)
    future = SCHOOL | {"before": {"from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"}}
    future |= {"after": {"from": "2026-12-02T00:00:00Z"}}
    assert client.post("/v1/admin/experiments", json=future, headers=ADMIN).status_code == 201
    body = client.get("/v1/experiments/school-street").json()
    assert (body["verdict"], body["estimate"]) == ("insufficient", None)
    assert all(s["values"] == 0 for s in body["sides"])


def test_the_open_list_never_names_an_unpublished_sensor(registry: Path) -> None:
    client = client_of(registry)
    named = SCHOOL | {"treated": {"sensors": ["n1", "secret"]}, "control": {"sensors": ["n3"]}}
    assert client.post("/v1/admin/experiments", json=named, headers=ADMIN).status_code == 201
    (listed,) = client.get("/v1/experiments").json()["data"]
    assert listed["treated"] == {"sensors": ["n1"]}
    admin = client.get("/v1/admin/experiments/school-street", headers=ADMIN).json()
    assert admin["treated"]["sensors"] == ["n1", "secret"]
    assert "secret" not in client.get("/v1/experiments/school-street").text
