"""/v1/observations and /v1/sensors/{id}/observations over a fake store: what reaches the
store, paging, formats and refusals."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest

from api.filters import BBox
from api.formats import OBSERVATION_FIELDS, Observation
from api.privacy import OPEN_QUANTITIES
from tests.unit.api.fakes import NOW, FakeStore, client_for

START = NOW - timedelta(hours=2)


def readings(count: int) -> list[Observation]:
    """``count`` readings, one a minute, of two sensors in turn."""
    return [
        Observation(
            time=START + timedelta(minutes=i // 2),
            tenant="town",
            sensor_id=f"air-{i % 2}",
            quantity="pm2_5",
            value=float(i),
            unit="ug/m3",
            lat=52.1,
            lon=5.1,
            quality_flags=["spike"] if i == 3 else [],
        )
        for i in range(count)
    ]


def test_every_parameter_reaches_its_own_field() -> None:
    store = FakeStore()
    response = client_for(store).get(
        "/v1/observations",
        params={
            "sensor_id": ["air-2", "air-1"],
            "tenant": "town",
            "quantity": "pm10",
            "bbox": "5.0,52.0,5.2,52.2",
            "from": "2026-11-26T01:00:00Z",
            "to": "2026-11-26T03:00:00+01:00",
            "limit": "7",
        },
    )
    assert response.status_code == 200, response.text
    [flt] = store.observation_filters
    assert flt.tenant == "town"
    assert flt.quantity == "pm10"
    assert flt.sensor_ids == ("air-1", "air-2") and flt.sensor_id is None
    assert flt.bbox == BBox(min_lon=5.0, min_lat=52.0, max_lon=5.2, max_lat=52.2)
    assert flt.start.isoformat() == "2026-11-26T01:00:00+00:00"
    assert flt.stop.isoformat() == "2026-11-26T02:00:00+00:00"
    assert flt.limit == 8
    assert flt.after is None


def test_one_sensor_in_the_path_and_the_default_range() -> None:
    store = FakeStore()
    response = client_for(store).get("/v1/sensors/air-1/observations", params={"tenant": "town"})
    assert response.status_code == 200, response.text
    [flt] = store.observation_filters
    assert (flt.sensor_id, flt.sensor_ids, flt.tenant) == ("air-1", (), "town")
    assert (flt.start, flt.stop) == (NOW - timedelta(days=1), NOW)
    assert flt.quantity is None and flt.bbox is None


def test_only_open_quantities_are_asked_of_the_store() -> None:
    store = FakeStore()
    assert client_for(store).get("/v1/observations").status_code == 200
    [flt] = store.observation_filters
    assert flt.allowed == OPEN_QUANTITIES
    assert "battery_level" not in flt.allowed and "pm2_5" in flt.allowed


def test_paging_walks_every_row_once() -> None:
    store = FakeStore(readings=readings(7))
    client = client_for(store)
    url: str | None = "/v1/observations?limit=3"
    seen = []
    while url:
        body = client.get(url).json()
        seen += [(row["time"], row["sensor_id"]) for row in body["data"]]
        url = body["links"].get("next")
    assert len(seen) == 7 and len(set(seen)) == 7
    assert len(store.observation_filters) == 3
    first, second, _ = store.observation_filters
    assert first.after is None
    rows = sorted(readings(7), key=lambda r: (r.time, r.sensor_id))
    assert second.after == (rows[2].time, "town", rows[2].sensor_id, "pm2_5")


def test_a_full_last_page_has_no_next_link() -> None:
    store = FakeStore(readings=readings(3))
    body = client_for(store).get("/v1/observations?limit=3").json()
    assert len(body["data"]) == 3 and "next" not in body["links"]


def test_csv_streams_the_columns_and_links_the_next_page_in_a_header() -> None:
    store = FakeStore(readings=readings(5))
    response = client_for(store).get("/v1/observations?limit=4&format=csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert 'rel="next"' in response.headers["link"] and "cursor=" in response.headers["link"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == OBSERVATION_FIELDS
    assert len(rows) == 1 + 4
    assert rows[4][OBSERVATION_FIELDS.index("quality_flags")] == "spike"


def test_json_lines_and_the_accept_header() -> None:
    store = FakeStore(readings=readings(2))
    response = client_for(store).get("/v1/observations", headers={"accept": "application/x-ndjson"})
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["value"] for line in lines] == [0.0, 1.0]
    assert "link" not in response.headers  # one page holds them all


def test_geojson_places_each_reading_where_it_reported() -> None:
    store = FakeStore(readings=readings(3))
    response = client_for(store).get("/v1/observations?format=geojson&limit=2")
    assert response.headers["content-type"] == "application/geo+json"
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert [f["geometry"]["coordinates"] for f in body["features"]] == [[5.1, 52.1]] * 2
    assert "cursor=" in body["links"]["next"]


@pytest.mark.parametrize(
    ("query", "status", "detail"),
    [
        ("quantity=battery_level", 404, "not published"),
        ("quantity=battery_level&from=2026-11-27T00:00:00Z&to=2026-11-26T00:00:00Z", 404, "not"),
        ("quantity=battery_level&limit=0", 400, "limit"),  # malformed beats unpublished
        ("from=2026-11-27T00:00:00Z&to=2026-11-26T00:00:00Z", 400, "before"),
        ("from=2026-10-01T00:00:00Z", 400, "31 days"),
        ("from=2026-11-26T00:00:00", 400, "offset"),
        ("from=1700000000", 400, "RFC 3339"),
        ("limit=100001", 400, "limit"),
        ("cursor=bm9wZQ", 400, "cursor"),
        ("bbox=1,2,3", 400, "bbox"),
        ("sensor_id=a&sensor_id=b&sensor_id=c", 400, "at most 2"),
        ("format=xml", 400, "format"),
        ("tenant=no spaces", 400, "tenant"),
    ],
)
def test_bad_queries_are_problems_and_never_reach_the_store(
    query: str, status: int, detail: str
) -> None:
    store = FakeStore()
    response = client_for(store, max_sensors_per_query=2).get(f"/v1/observations?{query}")
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert detail in response.json()["detail"]
    assert store.observation_filters == []


def test_a_closed_range_is_cacheable_for_long() -> None:
    store = FakeStore()
    client = client_for(store, cache_max_age_s=30, cache_closed_max_age_s=86400)
    closed = client.get("/v1/observations?to=2026-11-27T11:00:00Z")
    recent = client.get("/v1/observations?to=2026-11-27T11:58:00Z")  # within the grace
    assert closed.headers["cache-control"] == "public, max-age=86400"
    assert recent.headers["cache-control"] == "public, max-age=30"
