"""/v1/sensors, /v1/sensors/{id} and /v1/latest over a fake store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from api.privacy import OPEN_QUANTITIES
from api.sensors import QuantityInfo, Sensor, SensorLocation
from tests.unit.api.fakes import NOW, FakeStore, client_for

AIR = Sensor(
    id="air-1",
    tenant="town",
    district="centrum",
    quantities=[
        QuantityInfo(quantity="pm10", unit="ug/m3", last_value=12.0, last_time=NOW),
        QuantityInfo(quantity="temperature", unit="Cel", last_value=3.5, last_time=NOW),
    ],
    location=SensorLocation(lat=52.1, lon=5.1),
)
NOISE = Sensor(
    id="noise-1",
    tenant="town",
    district="oost",
    quantities=[QuantityInfo(quantity="noise_level", unit="dB", last_value=55.0)],
    location=SensorLocation(lat=50.0, lon=4.0),
)
TWIN = Sensor(id="air-1", tenant="city", quantities=[QuantityInfo(quantity="pm10")])


def test_recent_sensors_are_asked_once_per_tenant_with_the_open_quantities() -> None:
    store = FakeStore(recent=[AIR, NOISE])
    client = client_for(store, sensors_lookback_days=7, sensors_cache_s=60)
    assert client.get("/v1/sensors?tenant=town").status_code == 200
    assert client.get("/v1/sensors?tenant=town&format=geojson").status_code == 200
    [call] = store.sensor_calls  # the second answer came from the cache
    assert call.tenant == "town"
    assert call.since == NOW - timedelta(days=7)
    assert call.allowed == OPEN_QUANTITIES


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("", ["air-1", "noise-1"]),
        ("quantity=pm10", ["air-1"]),
        ("district=oost", ["noise-1"]),
        ("bbox=5.0,52.0,5.2,52.2", ["air-1"]),
        ("quantity=pm10&district=oost", []),
    ],
)
def test_sensor_filters(query: str, ids: list[str]) -> None:
    body = client_for(FakeStore(recent=[AIR, NOISE])).get(f"/v1/sensors?{query}").json()
    assert [s["id"] for s in body["data"]] == ids


def test_a_quantity_filter_keeps_only_that_quantity() -> None:
    body = client_for(FakeStore(recent=[AIR])).get("/v1/sensors?quantity=pm10").json()
    assert [q["quantity"] for q in body["data"][0]["quantities"]] == ["pm10"]


def test_sensors_as_geojson() -> None:
    response = client_for(FakeStore(recent=[AIR])).get(
        "/v1/sensors", headers={"accept": "application/geo+json"}
    )
    assert response.headers["content-type"] == "application/geo+json"
    assert response.json()["features"][0]["geometry"]["coordinates"] == [5.1, 52.1]


def test_one_sensor() -> None:
    client = client_for(FakeStore(recent=[AIR, TWIN]))
    assert client.get("/v1/sensors/air-1?tenant=town").json()["district"] == "centrum"
    assert client.get("/v1/sensors/air-1").status_code == 400  # in two tenants
    assert client.get("/v1/sensors/nope").status_code == 404
    collection = client.get("/v1/sensors/air-1?tenant=city&format=geojson").json()
    assert collection["features"][0]["geometry"] is None  # no known position


def test_latest_is_one_feature_per_sensor_and_quantity() -> None:
    store = FakeStore(recent=[AIR, NOISE])
    response = client_for(store).get("/v1/latest?bbox=5.0,52.0,5.2,52.2")
    assert response.headers["content-type"] == "application/geo+json"
    properties = [f["properties"] for f in response.json()["features"]]
    assert [(p["sensor_id"], p["quantity"], p["value"]) for p in properties] == [
        ("air-1", "pm10", 12.0),
        ("air-1", "temperature", 3.5),
    ]


@pytest.mark.parametrize("path", ["/v1/sensors", "/v1/latest"])
@pytest.mark.parametrize(
    ("query", "status"),
    [("quantity=battery_level", 404), ("bbox=0,0,1", 400), ("bbox=0,0,1&quantity=rssi", 400)],
)
def test_bad_queries(path: str, query: str, status: int) -> None:
    response = client_for(FakeStore(recent=[AIR])).get(f"{path}?{query}")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


def test_latest_urls_that_differ_in_order_or_junk_share_one_cached_answer() -> None:
    client = client_for(FakeStore(recent=[AIR, NOISE]))
    cache = client.app.state.context.latest  # type: ignore[attr-defined]
    first = client.get("/v1/latest?tenant=town&quantity=pm10")
    assert first.json()["links"]["self"] == "http://testserver/v1/latest?quantity=pm10&tenant=town"
    for junk in range(20):
        again = client.get(f"/v1/latest?quantity=pm10&utm={junk}&tenant=town")
        assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert len(cache) == 1
    client.get("/v1/latest?tenant=town&quantity=pm10&quantity=temperature")  # last one counts
    assert len(cache) == 2
    assert [
        p["properties"]["quantity"]
        for p in client.get("/v1/latest?tenant=town&quantity=temperature").json()["features"]
    ] == ["temperature"]
    assert len(cache) == 2
