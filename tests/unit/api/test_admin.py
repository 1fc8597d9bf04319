"""Registry administration: the pure changes, the file store, and the /v1/admin routes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.admin import Conflict, RegistryStore, Unknown, add, change, render
from api.app import create_app
from tests.unit.api.fakes import FakeStore
from urbanpulse.registry import SensorInfo, parse_registry
from urbanpulse.settings import ApiSettings, Settings, StreamsSettings

KEY = "admin-key-0123456789abcdef"
READ_KEY = "read-key-0123456789abcdef"
READ_ONLY_KEY = "read-only-key-0123456789abcdef"
AUTH = {"X-API-Key": KEY}

YAML = """\
version: 1
sensors:
  - tenant: utrecht
    sensor_id: air-001
    district: centrum
    lat: 52.0907
    lon: 5.1214
    interval_s: 60
"""
CSV = """\
sensor_id,tenant,district,lat,lon,interval_s
air-001,utrecht,centrum,52.0907,5.1214,60
"""


def info(sensor_id: str = "air-002", **fields: Any) -> SensorInfo:
    return SensorInfo(tenant="utrecht", sensor_id=sensor_id, **fields)


# ---------------------------------------------------------------- pure changes and rendering


def test_add_refuses_a_duplicate() -> None:
    sensors = add({}, info())
    assert list(sensors) == [("utrecht", "air-002")]
    with pytest.raises(Conflict):
        add(sensors, info(district="oost"))


def test_change_merges_and_validates() -> None:
    sensors = add({}, info(lat=52.0, lon=5.0))
    key = ("utrecht", "air-002")
    changed = change(sensors, key, {"district": "oost", "lat": None})
    assert changed[key].district == "oost" and changed[key].lat is None
    assert changed[key].lon == 5.0
    with pytest.raises(ValueError):
        change(sensors, key, {"lat": 91})
    with pytest.raises(Unknown):
        change(sensors, ("utrecht", "nope"), {})


@pytest.mark.parametrize(("kind", "original"), [("yaml", YAML), ("csv", CSV)])
def test_render_round_trips_through_parse_registry(kind: Any, original: str) -> None:
    sensors = parse_registry(original, kind)
    sensors = add(sensors, info(privacy="restricted", alt=3.5, licence="CC0-1.0"))
    sensors = change(sensors, ("utrecht", "air-001"), {"status": "retired"})
    text = render(sensors, kind, original)
    assert parse_registry(text, kind) == sensors


def test_render_keeps_the_yaml_shape_and_other_keys() -> None:
    text = render(parse_registry(YAML, "yaml"), "yaml", YAML)
    assert text.startswith("version: 1\nsensors:\n")
    bare = "- tenant: a\n  sensor_id: b\n"
    assert render(parse_registry(bare, "yaml"), "yaml", bare) == bare


def test_render_keeps_the_csv_columns_and_adds_only_needed_ones() -> None:
    sensors = parse_registry(CSV, "csv")
    assert render(sensors, "csv", CSV) == CSV  # 60, not 60.0; same column order
    retired = change(sensors, ("utrecht", "air-001"), {"status": "retired"})
    lines = render(retired, "csv", CSV).splitlines()
    assert lines[0] == "sensor_id,tenant,district,lat,lon,interval_s,status"
    assert lines[1].endswith(",60,retired")


# ---------------------------------------------------------------- the file store


def test_store_changes_the_file_atomically_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(YAML)
    path.chmod(0o640)
    store = RegistryStore(str(path))
    store.update(lambda s: add(s, info()))
    assert set(parse_registry(path.read_text(), "yaml")) == {
        ("utrecht", "air-001"),
        ("utrecht", "air-002"),
    }
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == [".registry.yaml.lock", "registry.yaml"]


def test_store_never_writes_an_invalid_file_and_refuses_to_edit_one(tmp_path: Path) -> None:
    path = tmp_path / "registry.csv"
    path.write_text("tenant,sensor_id\nutrecht,bad id\n")
    store = RegistryStore(str(path))
    with pytest.raises(Conflict, match="invalid"):
        store.update(lambda s: add(s, info()))
    assert path.read_text() == "tenant,sensor_id\nutrecht,bad id\n"


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "registry.csv"
    path.write_text(CSV)
    store = RegistryStore(str(path))
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                store.update(lambda s, i=i: add(s, info(f"w{n}-{i}")))  # type: ignore[misc]
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(parse_registry(path.read_text(), "csv")) == 1 + 8 * 10


# ---------------------------------------------------------------- the routes


def _client(registry: Path | None) -> TestClient:
    settings = Settings(
        api=ApiSettings(api_keys=[f"{KEY}:admin", READ_KEY, f"{READ_ONLY_KEY}:read"]),
        streams=StreamsSettings(registry_path=str(registry) if registry else ""),
    )
    return TestClient(create_app(settings, store=FakeStore()))


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(YAML)
    return path


CALLS = [
    ("GET", "/v1/admin/sensors", None),
    ("GET", "/v1/admin/sensors/utrecht/air-001", None),
    ("POST", "/v1/admin/sensors", {"tenant": "utrecht", "sensor_id": "x"}),
    ("PATCH", "/v1/admin/sensors/utrecht/air-001", {"district": "oost"}),
    ("POST", "/v1/admin/sensors/utrecht/air-001/retire", None),
]


@pytest.mark.parametrize(
    ("key", "status"),
    [
        (None, 401),  # no key
        ("wrong-key-0123456789abcdef", 401),  # not a key
        (f"{KEY}:admin", 401),  # the scope is configuration, not part of the key
        (READ_KEY, 403),  # a bare key is a read key
        (READ_ONLY_KEY, 403),  # configured KEY:read
    ],
)
def test_every_admin_route_needs_an_admin_key(registry: Path, key: str | None, status: int) -> None:
    client = _client(registry)
    headers = {"X-API-Key": key} if key else {}
    for method, url, body in CALLS:
        answer = client.request(method, url, json=body, headers=headers)
        assert answer.status_code == status, (method, url, key)
        assert answer.headers["content-type"] == "application/problem+json"
        if status == 403:
            assert "admin scope" in answer.json()["detail"]
            assert answer.json()["title"] == "Forbidden"
    assert registry.read_text() == YAML
    assert client.get("/v1/admin/sensors", headers=AUTH).status_code == 200  # the admin key


def test_add_change_retire_round_trip(registry: Path) -> None:
    client = _client(registry)
    new = {"tenant": "utrecht", "sensor_id": "noise-002", "district": "oost", "lat": 52.1}
    added = client.post("/v1/admin/sensors", json=new, headers=AUTH)
    assert added.status_code == 201, added.text
    assert added.headers["location"] == "/v1/admin/sensors/utrecht/noise-002"
    assert client.post("/v1/admin/sensors", json=new, headers=AUTH).status_code == 409

    patched = client.patch(
        "/v1/admin/sensors/utrecht/noise-002",
        json={"lat": None, "privacy": "restricted"},
        headers=AUTH,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["lat"] is None and patched.json()["privacy"] == "restricted"

    retired = client.post("/v1/admin/sensors/utrecht/noise-002/retire", headers=AUTH)
    assert retired.status_code == 200 and retired.json()["status"] == "retired"

    listed = client.get("/v1/admin/sensors", headers=AUTH).json()["data"]
    assert [(s["sensor_id"], s["status"]) for s in listed] == [
        ("air-001", "active"),
        ("noise-002", "retired"),
    ]
    on_disk = parse_registry(registry.read_text(), "yaml")
    assert on_disk[("utrecht", "noise-002")] == SensorInfo(
        tenant="utrecht", sensor_id="noise-002", district="oost", privacy="restricted",
        status="retired",
    )  # fmt: skip
    assert on_disk[("utrecht", "air-001")].interval_s == 60  # untouched


def test_unknown_invalid_and_unconfigured_are_problems(registry: Path) -> None:
    client = _client(registry)
    unknown = client.patch("/v1/admin/sensors/utrecht/nope", json={}, headers=AUTH)
    assert unknown.status_code == 404 and unknown.json()["status"] == 404
    assert client.get("/v1/admin/sensors/utrecht/nope", headers=AUTH).status_code == 404
    assert client.post("/v1/admin/sensors/utrecht/nope/retire", headers=AUTH).status_code == 404
    for body in (
        {"tenant": "utrecht"},  # no sensor_id
        {"tenant": "utrecht", "sensor_id": "bad id"},
        {"tenant": "utrecht", "sensor_id": "x", "lat": 200},
        {"tenant": "utrecht", "sensor_id": "x", "colour": "red"},  # typo'd field
    ):
        invalid = client.post("/v1/admin/sensors", json=body, headers=AUTH)
        assert invalid.status_code == 422, body
        assert invalid.headers["content-type"] == "application/problem+json"
    bad_patch = client.patch("/v1/admin/sensors/utrecht/air-001", json={"lat": 91}, headers=AUTH)
    assert bad_patch.status_code == 422
    assert registry.read_text() == YAML

    unconfigured = _client(None).get("/v1/admin/sensors", headers=AUTH)
    assert unconfigured.status_code == 503
    assert "URBANPULSE_STREAMS__REGISTRY_PATH" in unconfigured.json()["detail"]


def test_405_lists_the_methods_of_every_route_of_the_path(registry: Path) -> None:
    answer = _client(registry).put("/v1/admin/sensors", headers=AUTH)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, POST"
    assert answer.headers["content-type"] == "application/problem+json"


def test_admin_routes_are_documented_with_the_key_scheme() -> None:
    paths = _client(None).get("/openapi.json").json()["paths"]
    post = paths["/v1/admin/sensors"]["post"]
    assert post["tags"] == ["admin"]
    assert post["security"] == [{"ApiKey": []}]
    assert {"201", "401", "409", "422"} <= set(post["responses"])
    assert post["requestBody"]["content"]["application/json"]["examples"]


# ---------------------------------------------------------------- what retiring means


@pytest.mark.parametrize(
    ("status", "alerted"), [("retired", [b"t/active-1"]), ("active", [b"t/active-1", b"t/other"])]
)
def test_a_retired_sensor_raises_no_stale_alert(
    tmp_path: Path, status: str, alerted: list[bytes]
) -> None:
    import asyncio

    from streams.app import create_app as create_worker
    from streams.state import SensorState, encode_sensor
    from tests.unit.streams.helpers import FakeTable, FakeTopic, FakeWriter

    registry = tmp_path / "registry.csv"
    registry.write_text(f"tenant,sensor_id,status\nt,active-1,active\nt,other,{status}\n")
    settings = Settings(streams=StreamsSettings(registry_path=str(registry)))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        worker = create_worker(settings).urbanpulse_worker
        worker.writer = FakeWriter()
        worker.topics = {
            n: FakeTopic() for n in ("deadletter", "alerts", "district", "observations")
        }
        worker.tables = {"sensor": FakeTable(), "district": FakeTable()}
        for sensor in ("active-1", "other"):
            # Silent for a day: stale, and not yet forgotten (FORGET_SILENT_AFTER_S, 7 days).
            state = SensorState(partition=0, tenant="t", sensor_id=sensor, last_received_us=0)
            worker.tables["sensor"].data[f"t/{sensor}".encode()] = (0, encode_sensor(state))
        loop.run_until_complete(worker.check_stale({0}, now_us=86_400_000_000))
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    assert sorted(key for key, _ in worker.topics["alerts"].sent) == alerted


def test_a_registry_that_is_not_utf8_is_a_409_problem_and_stays_as_it_is(registry: Path) -> None:
    latin1 = YAML.replace("centrum", "caf\xe9").encode("latin-1")
    registry.write_bytes(latin1)
    client = _client(registry)
    new = {"tenant": "utrecht", "sensor_id": "noise-002"}
    for answer in (
        client.get("/v1/admin/sensors", headers=AUTH),
        client.get("/v1/admin/sensors/utrecht/air-001", headers=AUTH),
        client.post("/v1/admin/sensors", json=new, headers=AUTH),
        client.post("/v1/admin/sensors/utrecht/air-001/retire", headers=AUTH),
    ):
        assert answer.status_code == 409, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert "not UTF-8" in answer.json()["detail"]
    assert registry.read_bytes() == latin1
