"""/v1/alerts over a fake store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from api.formats import Alert
from api.privacy import OPEN_QUANTITIES
from api.sensors import Sensor, SensorLocation
from tests.unit.api.fakes import NOW, FakeStore, client_for

START = NOW - timedelta(days=3)


def episodes(count: int) -> list[Alert]:
    return [
        Alert(
            started_at=START + timedelta(hours=i),
            state="open",
            tenant="town",
            sensor_id="air-1",
            rule="pm10_high",
            quantity="pm10",
            value=80.0 + i,
            message="PM10 above 50",
        )
        for i in range(count)
    ]


def test_every_parameter_reaches_its_own_field() -> None:
    store = FakeStore()
    response = client_for(store).get(
        "/v1/alerts",
        params={
            "state": "closed",
            "sensor_id": "air-1",
            "rule": "pm10_high",
            "quantity": "pm10",
            "tenant": "town",
            "to": "2026-11-20T00:00:00Z",
        },
    )
    assert response.status_code == 200, response.text
    [flt] = store.alert_filters
    assert (flt.state, flt.sensor_id, flt.rule) == ("closed", "air-1", "pm10_high")
    assert (flt.quantity, flt.tenant) == ("pm10", "town")
    assert flt.stop.isoformat() == "2026-11-20T00:00:00+00:00"
    assert flt.stop - flt.start == timedelta(days=366)  # no `from`: the longest range
    assert flt.allowed == OPEN_QUANTITIES


def test_paging_walks_every_episode_once() -> None:
    store = FakeStore(episodes=episodes(5))
    client = client_for(store)
    url: str | None = "/v1/alerts?limit=2"
    values = []
    while url:
        body = client.get(url).json()
        values += [row["value"] for row in body["data"]]
        url = body["links"].get("next")
    assert values == [80.0, 81.0, 82.0, 83.0, 84.0]
    assert store.alert_filters[1].after == (
        START + timedelta(hours=1),
        "town",
        "air-1",
        "pm10_high",
        "pm10",
    )


def test_geojson_places_episodes_at_their_sensor() -> None:
    where = Sensor(id="air-1", tenant="town", location=SensorLocation(lat=52.1, lon=5.1))
    store = FakeStore(recent=[where], episodes=episodes(1))
    body = client_for(store).get("/v1/alerts?format=geojson&tenant=town").json()
    [feature] = body["features"]
    assert feature["geometry"]["coordinates"] == [5.1, 52.1]
    assert feature["properties"]["rule"] == "pm10_high"
    assert [call.tenant for call in store.sensor_calls] == ["town"]


@pytest.mark.parametrize(
    ("query", "status"),
    [("state=maybe", 400), ("quantity=battery_level", 404), ("cursor=x", 400), ("rule=a b", 400)],
)
def test_bad_queries(query: str, status: int) -> None:
    store = FakeStore()
    assert client_for(store).get(f"/v1/alerts?{query}").status_code == status
    assert store.alert_filters == []
