"""The open-data endpoints on real InfluxDB: every endpoint and format, parsed back.

Fixture data is written under a tenant of its own: raw readings (through the stream worker's
writer), and aggregates and alerts in the agreed schema of the aggregate bucket.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from geojson_pydantic import FeatureCollection
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

from api.app import create_app
from streams.influx_writer import InfluxWriter
from streams.points import SensorLabels
from tests.support import unique
from urbanpulse.model import Location, Reading
from urbanpulse.settings import ApiSettings, Settings

# Recent enough for the sensors look-back, whole hours so windows line up.
T0 = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
DAY = {"from": (T0 - timedelta(hours=1)).isoformat(), "to": (T0 + timedelta(hours=23)).isoformat()}
PLACES = {
    "s-in": Location(lat=52.10, lon=5.10),
    "s-out": Location(lat=48.0, lon=2.0),
    "s-none": None,
}
OPEN = (("pm2_5", "ug/m3"), ("noise_level", "dB"))
HIDDEN = (("rssi", "dB[mW]"), ("my_custom_thing", "1"))  # restricted; unknown → restricted
MINUTES = 20
BOX = "5.0,52.0,5.2,52.2"


def readings(tenant: str) -> list[Reading]:
    out = []
    for minute in range(MINUTES):
        for sensor, place in PLACES.items():
            for quantity, unit in OPEN + HIDDEN:
                out.append(
                    Reading(
                        tenant=tenant,
                        sensor_id=sensor,
                        quantity=quantity,
                        value=minute + 0.5,
                        unit=unit,
                        observed_at=T0 + timedelta(minutes=minute),
                        received_at=T0 + timedelta(minutes=minute, seconds=1),
                        location=place,
                        source_format="json",
                        message_id=f"{sensor}-{quantity}-{minute}",
                        quality_flags=("spike",) if minute == 3 else (),
                    )
                )
    return out


def aggregate_points(tenant: str) -> list[Point]:
    points = []
    for window, step, n in (("1h", timedelta(hours=1), 6), ("15m", timedelta(minutes=15), 8)):
        for i in range(n):
            for sensor in PLACES:
                for quantity, unit in (*OPEN, HIDDEN[0]):
                    points.append(
                        Point("aggregate")
                        .tag("tenant", tenant)
                        .tag("scope", "sensor")
                        .tag("sensor_id", sensor)
                        .tag("quantity", quantity)
                        .tag("window", window)
                        .field("count", 60)
                        .field("mean", 10.0 + i)
                        .field("min", 1.0 + i)
                        .field("max", 20.0 + i)
                        .field("last", 11.0 + i)
                        .field("unit", unit)
                        .time(T0 + i * step, WritePrecision.NS)
                    )
            points.append(
                Point("aggregate")
                .tag("tenant", tenant)
                .tag("scope", "district")
                .tag("district", "centre")
                .tag("quantity", "pm2_5")
                .tag("window", window)
                .field("count", 180)
                .field("mean", 12.5)
                .field("min", 2.0)
                .field("max", 30.0)
                .field("last", 13.0)
                .field("unit", "ug/m3")
                .time(T0 + i * step, WritePrecision.NS)
            )
    return points


def alert_points(tenant: str) -> list[Point]:
    def alert(sensor: str, quantity: str, start: datetime, end: datetime | None) -> Point:
        return (
            Point("alert")
            .tag("tenant", tenant)
            .tag("sensor_id", sensor)
            .tag("rule", f"{quantity}_high")
            .tag("quantity", quantity)
            .field("state", "closed" if end else "open")
            .field("started_at", start.isoformat().replace("+00:00", "Z"))
            .field("ended_at", end.isoformat().replace("+00:00", "Z") if end else "")
            .field("value", 55.5)
            .field("message", f"{quantity} above threshold")
            .time(start, WritePrecision.NS)
        )

    return [
        alert("s-in", "pm2_5", T0, T0 + timedelta(minutes=10)),
        alert("s-out", "pm2_5", T0 + timedelta(hours=1), T0 + timedelta(hours=2)),
        alert("s-in", "noise_level", T0 + timedelta(hours=3), None),
        alert("s-in", "rssi", T0 + timedelta(hours=4), None),  # restricted: never shown
    ]


@pytest.fixture(scope="module")
def tenant() -> str:
    name = unique("open")
    settings = Settings().influx
    writer = InfluxWriter(settings)
    rows = readings(name)
    # registry districts travel as tags of the raw points, as the stream worker writes them
    districts = {"s-in": "centrum", "s-out": "noord"}
    labels = {
        r.key: SensorLabels(district=districts[r.sensor_id])
        for r in rows
        if r.sensor_id in districts
    }
    writer.write(rows, labels)
    writer.close()
    with InfluxDBClient(url=settings.url, token="", org=settings.org) as client:
        write = client.write_api(write_options=SYNCHRONOUS)
        write.write(settings.aggregate_bucket, settings.org, aggregate_points(name))
        write.write(settings.aggregate_bucket, settings.org, alert_points(name))
    return name


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    # No rate limit: these tests send far more than a client's burst (limits: test_ratelimit).
    api = ApiSettings(max_sensors_per_query=3, gzip_min_bytes=500, rate_anonymous_per_s=0)
    with TestClient(create_app(Settings(api=api))) as test_client:
        yield test_client


def geojson(response: Any) -> FeatureCollection:  # type: ignore[type-arg]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    return FeatureCollection.model_validate_json(response.content)


def walk(client: TestClient, url: str, params: dict[str, Any], fmt: str) -> list[dict[str, Any]]:
    """Follow next links to the end, in any format; return every row."""
    rows: list[dict[str, Any]] = []
    next_url: str | None = url
    query: dict[str, Any] | None = {**params, "format": fmt}
    pages = 0
    while next_url:
        response = client.get(next_url, params=query)
        assert response.status_code == 200, response.text
        pages += 1
        query = None
        if fmt == "json":
            body = response.json()
            rows += body["data"]
            next_url = body["links"].get("next")
        elif fmt == "geojson":
            fc = geojson(response)
            rows += [dict(f.properties or {}) for f in fc.features]
            next_url = json.loads(response.content)["links"].get("next")
        else:
            if fmt == "csv":
                rows += list(csv.DictReader(io.StringIO(response.text)))
            else:
                rows += [json.loads(line) for line in response.text.splitlines()]
            link = response.headers.get("link")
            next_url = link[1 : link.index(">")] if link else None
    assert pages > 1, "the walk should span several pages"
    return rows


# --- sensors and latest values -------------------------------------------------------------


def test_sensors_filters_and_privacy(client: TestClient, tenant: str) -> None:
    body = client.get("/v1/sensors", params={"tenant": tenant}).json()
    assert [s["id"] for s in body["data"]] == ["s-in", "s-none", "s-out"]
    for sensor in body["data"]:
        assert {q["quantity"] for q in sensor["quantities"]} == {"noise_level", "pm2_5"}
    in_box = client.get("/v1/sensors", params={"tenant": tenant, "bbox": BOX}).json()
    assert [s["id"] for s in in_box["data"]] == ["s-in"]
    noise = client.get("/v1/sensors", params={"tenant": tenant, "quantity": "noise_level"}).json()
    assert all([q["quantity"] for q in s["quantities"]] == ["noise_level"] for s in noise["data"])
    hidden = client.get("/v1/sensors", params={"tenant": tenant, "quantity": "rssi"})
    assert hidden.status_code == 404


def test_sensors_of_a_district(client: TestClient, tenant: str) -> None:
    body = client.get("/v1/sensors", params={"tenant": tenant}).json()
    assert {s["id"]: s["district"] for s in body["data"]} == {
        "s-in": "centrum",
        "s-none": None,
        "s-out": "noord",
    }
    centrum = client.get("/v1/sensors", params={"tenant": tenant, "district": "centrum"}).json()
    assert [s["id"] for s in centrum["data"]] == ["s-in"]
    nowhere = client.get("/v1/sensors", params={"tenant": tenant, "district": "elsewhere"})
    assert nowhere.json()["data"] == []
    assert client.get("/v1/sensors", params={"district": "no spaces"}).status_code == 400


def test_sensors_as_geojson(client: TestClient, tenant: str) -> None:
    fc = geojson(client.get("/v1/sensors", params={"tenant": tenant, "format": "geojson"}))
    by_id = {f.id: f for f in fc.features}
    assert set(by_id) == {f"{tenant}/s-in", f"{tenant}/s-out", f"{tenant}/s-none"}
    point = by_id[f"{tenant}/s-in"].geometry
    assert point is not None and tuple(point.coordinates) == (5.10, 52.10)  # lon, lat
    assert by_id[f"{tenant}/s-none"].geometry is None
    accept = client.get(
        "/v1/sensors", params={"tenant": tenant}, headers={"Accept": "application/geo+json"}
    )
    assert geojson(accept).features


def test_one_sensor(client: TestClient, tenant: str) -> None:
    one = client.get("/v1/sensors/s-in", params={"tenant": tenant}).json()
    assert one["id"] == "s-in" and one["location"] == {"lat": 52.1, "lon": 5.1}
    latest = {q["quantity"]: q for q in one["quantities"]}
    assert latest["pm2_5"]["last_value"] == MINUTES - 0.5
    fc = geojson(client.get("/v1/sensors/s-in", params={"tenant": tenant, "format": "geojson"}))
    assert [f.id for f in fc.features] == [f"{tenant}/s-in"]
    missing = client.get("/v1/sensors/nobody", params={"tenant": tenant})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_latest_is_a_feature_per_sensor_and_quantity(client: TestClient, tenant: str) -> None:
    fc = geojson(client.get("/v1/latest", params={"tenant": tenant}))
    assert len(fc.features) == len(PLACES) * len(OPEN)
    for feature in fc.features:
        props = feature.properties or {}
        assert props["quantity"] in {"pm2_5", "noise_level"}
        assert props["value"] == MINUTES - 0.5
        last = T0 + timedelta(minutes=MINUTES - 1)
        assert datetime.fromisoformat(props["time"]) == last
        assert props["quality_flags"] == []
    boxed = geojson(client.get("/v1/latest", params={"tenant": tenant, "bbox": BOX}))
    assert {(f.properties or {})["sensor_id"] for f in boxed.features} == {"s-in"}


# --- observations ---------------------------------------------------------------------------

EXPECTED_OBS = {
    (minute, sensor, quantity)
    for minute in range(MINUTES)
    for sensor in PLACES
    for quantity, _ in OPEN
}


def _obs_key(row: dict[str, Any]) -> tuple[int, str, str]:
    moment = datetime.fromisoformat(row["time"])
    return int((moment - T0).total_seconds() // 60), row["sensor_id"], row["quantity"]


@pytest.mark.parametrize("fmt", ["json", "csv", "geojson", "jsonl"])
def test_observation_pages_walk_everything_once(client: TestClient, tenant: str, fmt: str) -> None:
    rows = walk(client, "/v1/observations", {"tenant": tenant, "limit": 17, **DAY}, fmt)
    keys = [_obs_key(r) for r in rows]
    assert len(keys) == len(set(keys)) == len(EXPECTED_OBS)
    assert set(keys) == EXPECTED_OBS
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)
    flagged = [r for r in rows if _obs_key(r)[0] == 3]
    flags = {
        json.dumps(r["quality_flags"]) if fmt != "csv" else r["quality_flags"] for r in flagged
    }
    assert flags == ({"spike"} if fmt == "csv" else {'["spike"]'})


def test_observations_of_chosen_sensors_and_box(client: TestClient, tenant: str) -> None:
    params = {"tenant": tenant, "sensor_id": ["s-in", "s-none"], "quantity": "pm2_5", **DAY}
    data = client.get("/v1/observations", params=params).json()["data"]
    assert {r["sensor_id"] for r in data} == {"s-in", "s-none"} and len(data) == 2 * MINUTES
    boxed = client.get("/v1/observations", params={"tenant": tenant, "bbox": BOX, **DAY}).json()
    assert {r["sensor_id"] for r in boxed["data"]} == {"s-in"}
    assert len(boxed["data"]) == MINUTES * len(OPEN)
    fc = geojson(
        client.get(
            "/v1/sensors/s-out/observations", params={"tenant": tenant, "format": "geojson", **DAY}
        )
    )
    assert len(fc.features) == MINUTES * len(OPEN)
    assert all(f.geometry is not None for f in fc.features)


def test_restricted_quantities_never_appear(client: TestClient, tenant: str) -> None:
    for url in ("/v1/observations", "/v1/sensors/s-in/observations"):
        for fmt in ("json", "csv", "jsonl", "geojson"):
            text = client.get(url, params={"tenant": tenant, "format": fmt, **DAY}).text
            assert "rssi" not in text and "my_custom_thing" not in text
        hidden = client.get(url, params={"tenant": tenant, "quantity": "rssi", **DAY})
        assert hidden.status_code == 404
    for url in ("/v1/sensors", "/v1/latest", "/v1/aggregates", "/v1/alerts"):
        text = client.get(url, params={"tenant": tenant, **DAY}).text
        assert "rssi" not in text and "my_custom_thing" not in text, url


# --- aggregates ----------------------------------------------------------------------------


def test_sensor_aggregates(client: TestClient, tenant: str) -> None:
    body = client.get(
        "/v1/sensors/s-in/aggregates",
        params={"tenant": tenant, "window": "1h", "quantity": "pm2_5", **DAY},
    ).json()
    rows = body["data"]
    assert len(rows) == 6
    first = rows[0]
    assert datetime.fromisoformat(first["window_start"]) == T0
    assert datetime.fromisoformat(first["window_end"]) == T0 + timedelta(hours=1)
    assert (first["count"], first["mean"], first["min"], first["max"], first["last"]) == (
        60,
        10.0,
        1.0,
        20.0,
        11.0,
    )
    assert first["unit"] == "ug/m3" and first["sensor_id"] == "s-in"
    quarter = client.get(
        "/v1/sensors/s-in/aggregates", params={"tenant": tenant, "window": "15m", **DAY}
    ).json()["data"]
    assert len(quarter) == 8 * len(OPEN)


@pytest.mark.parametrize("fmt", ["json", "csv", "geojson", "jsonl"])
def test_aggregate_pages_walk_everything_once(client: TestClient, tenant: str, fmt: str) -> None:
    rows = walk(
        client, "/v1/aggregates", {"tenant": tenant, "window": "1h", "limit": 5, **DAY}, fmt
    )
    keys = [(r["window_start"], r["sensor_id"], r["quantity"]) for r in rows]
    assert len(keys) == len(set(keys)) == 6 * len(PLACES) * len(OPEN)
    if fmt == "csv":
        assert {int(r["count"]) for r in rows} == {60}
    else:
        assert {r["count"] for r in rows} == {60}


def test_aggregates_by_district_and_box(client: TestClient, tenant: str) -> None:
    district = client.get(
        "/v1/aggregates", params={"tenant": tenant, "scope": "district", "window": "15m", **DAY}
    ).json()["data"]
    assert len(district) == 8 and {r["district"] for r in district} == {"centre"}
    assert all(r["sensor_id"] is None and r["count"] == 180 for r in district)
    boxed = client.get(
        "/v1/aggregates", params={"tenant": tenant, "bbox": BOX, "format": "geojson", **DAY}
    )
    fc = geojson(boxed)
    assert {(f.properties or {})["sensor_id"] for f in fc.features} == {"s-in"}
    assert all(f.geometry is not None for f in fc.features)


# --- alerts --------------------------------------------------------------------------------


def test_alerts_current_and_past(client: TestClient, tenant: str) -> None:
    everything = client.get("/v1/alerts", params={"tenant": tenant}).json()["data"]
    assert [(a["sensor_id"], a["quantity"], a["state"]) for a in everything] == [
        ("s-in", "pm2_5", "closed"),
        ("s-out", "pm2_5", "closed"),
        ("s-in", "noise_level", "open"),
    ]
    current = client.get("/v1/alerts", params={"tenant": tenant, "state": "open"}).json()["data"]
    assert len(current) == 1 and current[0]["ended_at"] is None
    past = client.get("/v1/alerts", params={"tenant": tenant, "state": "closed"}).json()["data"]
    assert datetime.fromisoformat(past[0]["ended_at"]) == T0 + timedelta(minutes=10)
    rows = walk(client, "/v1/alerts", {"tenant": tenant, "limit": 1}, "jsonl")
    assert [r["started_at"] for r in rows] == [a["started_at"] for a in everything]
    text = client.get("/v1/alerts", params={"tenant": tenant, "format": "csv"}).text
    assert len(list(csv.DictReader(io.StringIO(text)))) == 3


# --- HTTP behaviour ------------------------------------------------------------------------


def test_etag_and_304(client: TestClient, tenant: str) -> None:
    first = client.get("/v1/latest", params={"tenant": tenant})
    etag = first.headers["etag"]
    again = client.get("/v1/latest", params={"tenant": tenant}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = client.get("/v1/latest", params={"tenant": tenant}, headers={"If-None-Match": '"x"'})
    assert other.status_code == 200


def test_cache_control_is_long_for_closed_windows(client: TestClient, tenant: str) -> None:
    closed = client.get("/v1/aggregates", params={"tenant": tenant, **DAY})
    assert closed.headers["cache-control"] == "public, max-age=86400"
    recent = client.get("/v1/aggregates", params={"tenant": tenant})  # up to now
    assert recent.headers["cache-control"] == "public, max-age=30"
    assert client.get("/v1/latest").headers["cache-control"] == "public, max-age=30"


def test_gzip_and_cors(client: TestClient, tenant: str) -> None:
    response = client.get(
        "/v1/observations",
        params={"tenant": tenant, **DAY},
        headers={"Accept-Encoding": "gzip", "Origin": "https://map.example.org"},
    )
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["access-control-allow-origin"] == "*"
    assert "ETag" in response.headers["access-control-expose-headers"]
    raw = client.get(
        "/v1/observations",
        params={"tenant": tenant, "format": "csv", **DAY},
        headers={"Accept-Encoding": "gzip"},
    )
    assert raw.headers["content-encoding"] == "gzip"
    assert gzip.compress(raw.content)  # decoded transparently by the client


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/v1/observations", {"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}),
        ("/v1/aggregates", {"from": "2020-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}),
        ("/v1/observations", {"limit": "10001"}),
        ("/v1/observations", {"sensor_id": ["a", "b", "c", "d"]}),
        ("/v1/aggregates", {"district": ["a"]}),
        ("/v1/aggregates", {"scope": "district", "bbox": BOX}),
        ("/v1/aggregates", {"window": "5m"}),
        ("/v1/observations", {"bbox": "1,2,3"}),
        ("/v1/observations", {"bbox": "10,0,5,1"}),
        ("/v1/observations", {"bbox": "nan,0,5,1"}),
        ("/v1/aggregates", {"cursor": "bm90LWEtY3Vyc29y"}),
        ("/v1/alerts", {"state": "maybe"}),
        ("/v1/latest", {"quantity": "PM25"}),
    ],
)
def test_limits_and_bad_queries_are_400(
    client: TestClient, url: str, params: dict[str, Any]
) -> None:
    response = client.get(url, params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]


def test_cursor_of_one_endpoint_is_refused_by_another(client: TestClient, tenant: str) -> None:
    page = client.get("/v1/alerts", params={"tenant": tenant, "limit": 1}).json()
    cursor = page["links"]["next"].split("cursor=")[1]
    response = client.get("/v1/aggregates", params={"cursor": cursor})
    assert response.status_code == 400


# --- injection ------------------------------------------------------------------------------

ATTACKS = [
    'x" or r._value > 0 or "',
    'x") |> yield(name: "leak") //',
    '${secrets.get(key: "k")}',
    "\\",
    '\\"',
    's-in" or "1" == "1',
]
ENDPOINTS: dict[str, list[str]] = {
    "/v1/sensors": ["tenant", "quantity", "bbox", "format"],
    "/v1/sensors/{attack}": ["tenant", "format"],
    "/v1/latest": ["tenant", "quantity", "bbox"],
    "/v1/observations": [
        "sensor_id",
        "tenant",
        "quantity",
        "bbox",
        "from",
        "to",
        "format",
        "limit",
        "cursor",
    ],
    "/v1/sensors/{attack}/observations": ["tenant", "quantity", "from", "to", "cursor"],
    "/v1/aggregates": [
        "window",
        "scope",
        "sensor_id",
        "district",
        "tenant",
        "quantity",
        "bbox",
        "from",
        "to",
        "cursor",
    ],
    "/v1/sensors/{attack}/aggregates": ["window", "tenant", "quantity", "cursor"],
    "/v1/alerts": ["state", "sensor_id", "rule", "quantity", "tenant", "from", "to", "cursor"],
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_injection_in_every_parameter_is_refused_or_harmless(
    client: TestClient, tenant: str, attack: str
) -> None:
    for template, names in ENDPOINTS.items():
        url = template.replace("{attack}", "s-in")
        for name in names:
            response = client.get(url, params={name: attack})
            _harmless(response, tenant)
        if "{attack}" in template:
            response = client.get(template.replace("{attack}", attack))
            _harmless(response, tenant)
            if response.status_code == 200 and "data" in response.json():
                assert response.json()["data"] == []


def _harmless(response: Any, tenant: str) -> None:
    assert response.status_code in (200, 400, 404), (response.status_code, response.text)
    text = response.text
    assert tenant not in text, "an attack reached another tenant's data"
    for leak in ("flux", "error calling", "undefined identifier", "Traceback", "influx"):
        assert leak.lower() not in text.lower(), text
