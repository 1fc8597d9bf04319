"""/v1/aggregates and /v1/sensors/{id}/aggregates over a fake store."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from api.formats import AGGREGATE_FIELDS, Aggregate
from api.privacy import OPEN_QUANTITIES
from api.sensors import QuantityInfo, Sensor, SensorLocation
from tests.unit.api.fakes import NOW, FakeStore, client_for

START = NOW - timedelta(hours=6)
INSIDE = Sensor(
    id="air-1",
    tenant="town",
    quantities=[QuantityInfo(quantity="pm10")],
    location=SensorLocation(lat=52.1, lon=5.1),
)
OUTSIDE = Sensor(
    id="air-2",
    tenant="town",
    quantities=[QuantityInfo(quantity="pm10")],
    location=SensorLocation(lat=50.0, lon=4.0),
)
BOX = "5.0,52.0,5.2,52.2"


def windows(count: int, sensor: str = "air-1") -> list[Aggregate]:
    return [
        Aggregate(
            window_start=START + timedelta(hours=i),
            window_end=START + timedelta(hours=i + 1),
            window="1h",
            tenant="town",
            scope="sensor",
            sensor_id=sensor,
            quantity="pm10",
            count=60,
            mean=10.0 + i,
            min=1.0,
            max=20.0,
            last=12.0,
            unit="ug/m3",
        )
        for i in range(count)
    ]


def test_district_parameters_reach_their_own_fields() -> None:
    store = FakeStore()
    response = client_for(store).get(
        "/v1/aggregates",
        params={
            "scope": "district",
            "district": ["oost", "centrum"],
            "window": "15m",
            "tenant": "town",
            "quantity": "pm10",
            "from": "2026-11-27T01:00:00Z",
            "to": "2026-11-27T02:00:00Z",
        },
    )
    assert response.status_code == 200, response.text
    [flt] = store.aggregate_filters
    assert (flt.scope, flt.keys, flt.window) == ("district", ("centrum", "oost"), "15m")
    assert (flt.tenant, flt.quantity) == ("town", "pm10")
    assert (flt.start.hour, flt.stop.hour) == (1, 2)
    assert flt.allowed == OPEN_QUANTITIES


def test_one_sensor_in_the_path() -> None:
    store = FakeStore()
    assert client_for(store).get("/v1/sensors/air-1/aggregates").status_code == 200
    [flt] = store.aggregate_filters
    assert (flt.scope, flt.keys, flt.window, flt.tenant) == ("sensor", ("air-1",), "1h", None)
    assert (flt.start, flt.stop) == (NOW - timedelta(days=1), NOW)


def test_a_box_asks_only_for_the_sensors_inside_it() -> None:
    store = FakeStore(recent=[INSIDE, OUTSIDE])
    response = client_for(store).get(f"/v1/aggregates?bbox={BOX}")
    assert response.status_code == 200
    [flt] = store.aggregate_filters
    assert flt.keys == ("air-1",)


def test_a_box_with_no_sensor_asks_the_store_nothing() -> None:
    store = FakeStore(recent=[OUTSIDE])
    body = client_for(store).get(f"/v1/aggregates?bbox={BOX}").json()
    assert body["data"] == [] and store.aggregate_filters == []


def test_paging_resumes_after_the_last_window() -> None:
    store = FakeStore(windows=windows(5))
    client = client_for(store)
    first = client.get("/v1/sensors/air-1/aggregates?limit=2").json()
    assert [row["mean"] for row in first["data"]] == [10.0, 11.0]
    second = client.get(first["links"]["next"]).json()
    assert [row["mean"] for row in second["data"]] == [12.0, 13.0]
    assert store.aggregate_filters[1].after == (
        START + timedelta(hours=1),
        "town",
        "air-1",
        "pm10",
    )


def test_csv_has_the_aggregate_columns() -> None:
    store = FakeStore(windows=windows(2))
    text = client_for(store).get("/v1/aggregates?format=csv").text
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == AGGREGATE_FIELDS and len(rows) == 3


def test_geojson_places_sensor_windows_at_the_sensor() -> None:
    store = FakeStore(recent=[INSIDE], windows=windows(1))
    body = client_for(store).get("/v1/aggregates?format=geojson").json()
    assert body["features"][0]["geometry"]["coordinates"] == [5.1, 52.1]


@pytest.mark.parametrize(
    ("query", "status", "detail"),
    [
        ("district=oost", 400, "scope=district"),
        ("scope=district&sensor_id=a", 400, "scope=sensor"),
        (f"scope=district&bbox={BOX}", 400, "scope=sensor only"),
        ("window=2h", 400, "window"),
        ("quantity=rssi", 404, "not published"),
        ("from=2025-01-01T00:00:00Z", 400, "366 days"),
    ],
)
def test_bad_queries(query: str, status: int, detail: str) -> None:
    store = FakeStore(recent=[INSIDE])
    response = client_for(store).get(f"/v1/aggregates?{query}")
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"]
    assert store.aggregate_filters == []
