"""The API on real InfluxDB: observations in JSON and CSV, paging, bad input, injection."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS

from api.app import create_app
from streams.influx_writer import InfluxWriter
from tests.support import unique
from urbanpulse.model import Location, Reading
from urbanpulse.settings import Settings

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
RANGE = {"from": "2026-11-20T00:00:00Z", "to": "2026-11-21T00:00:00Z"}


def fixture_readings(tenant: str) -> list[Reading]:
    readings = []
    for minute in range(25):
        for sensor in ("air-1", "air-2"):
            for quantity, unit in (("pm2_5", "ug/m3"), ("pm10", "ug/m3")):
                readings.append(
                    Reading(
                        tenant=tenant,
                        sensor_id=sensor,
                        quantity=quantity,
                        value=minute + (0.5 if quantity == "pm10" else 0.25),
                        unit=unit,
                        observed_at=T0 + timedelta(minutes=minute),
                        received_at=T0 + timedelta(minutes=minute, seconds=1),
                        location=Location(lat=52.1, lon=5.1),
                        source_format="json",
                        message_id=f"{sensor}-{quantity}-{minute}",
                    )
                )
    return readings


@pytest.fixture(scope="module")
def tenant() -> str:
    name = unique("api")
    writer = InfluxWriter(Settings().influx)
    writer.write(fixture_readings(name))
    writer.close()
    return name


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings())) as test_client:
        yield test_client


def test_observations_as_json(client: TestClient, tenant: str) -> None:
    response = client.get(
        "/v1/sensors/air-1/observations", params={"tenant": tenant, "quantity": "pm10", **RANGE}
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert len(data) == 25
    assert data[0] == {
        "time": "2026-11-20T08:00:00Z",
        "tenant": tenant,
        "sensor_id": "air-1",
        "quantity": "pm10",
        "value": 0.5,
        "unit": "ug/m3",
        "lat": 52.1,
        "lon": 5.1,
        "quality_flags": [],
    }


def test_observations_as_csv(client: TestClient, tenant: str) -> None:
    response = client.get(
        "/v1/sensors/air-2/observations", params={"tenant": tenant, "format": "csv", **RANGE}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 50
    assert rows[1]["quantity"] == "pm2_5" and float(rows[1]["value"]) == 0.25


def test_pages_cover_everything_once(client: TestClient, tenant: str) -> None:
    url: str | None = "/v1/sensors/air-1/observations"
    params: dict[str, str] | None = {"tenant": tenant, "limit": "7", **RANGE}
    seen: list[tuple[str, str]] = []
    pages = 0
    while url:
        body = client.get(url, params=params).json()
        seen += [(row["time"], row["quantity"]) for row in body["data"]]
        url, params, pages = body["links"].get("next"), None, pages + 1
    assert pages == 8  # 50 readings, 7 a page
    assert len(seen) == len(set(seen)) == 50
    assert seen == sorted(seen)


def test_sensors_list(client: TestClient, tenant: str) -> None:
    # The fixture data is older than the default look-back only if the clock is far ahead.
    body = client.get("/v1/sensors", params={"tenant": tenant}).json()
    sensors = {s["id"]: s for s in body["data"]}
    if datetime.now(UTC) - T0 > timedelta(days=30):
        pytest.fail("fixture data is older than sensors_lookback_days; move T0")
    assert set(sensors) == {"air-1", "air-2"}
    quantities = {q["quantity"]: q for q in sensors["air-1"]["quantities"]}
    assert quantities["pm10"]["last_value"] == 24.5
    assert sensors["air-1"]["location"] == {"lat": 52.1, "lon": 5.1}


@pytest.mark.parametrize(
    "params",
    [
        {"from": "yesterday"},
        {"from": "2026-11-20T00:00:00"},
        {"from": "2026-11-21T00:00:00Z", "to": "2026-11-20T00:00:00Z"},
        {"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"limit": "0"},
        {"limit": "1000000"},
        {"format": "xml"},
        {"cursor": "not-a-cursor"},
        {"quantity": 'pm10" or true'},
    ],
)
def test_bad_queries_are_400_problems(client: TestClient, params: dict[str, str]) -> None:
    response = client.get("/v1/sensors/air-1/observations", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "attack",
    ['air-1"or"1"=="1', 'x")|>yield()//', "${r._value}", '\\"', "air-1\\"],
)
def test_injection_attempts_leak_nothing(client: TestClient, tenant: str, attack: str) -> None:
    for params in ({"tenant": attack}, {"tenant": tenant}):
        response = client.get(f"/v1/sensors/{attack}/observations", params={**params, **RANGE})
        assert response.status_code in (200, 400, 404), response.text
        if response.status_code == 200:
            assert response.json()["data"] == []
    response = client.get("/v1/sensors/air-1/observations", params={"tenant": attack, **RANGE})
    assert response.status_code in (200, 400) and (
        response.status_code == 400 or response.json()["data"] == []
    )


def test_sensors_show_the_latest_reading_s_flags(client: TestClient) -> None:
    # A reading without flags has no quality_flags field (an older worker wrote an empty one):
    # the latest flags found are the latest reading's only when it has them.
    tenant = unique("flags")
    settings = Settings()

    def reading(sensor: str, minute: int, flags: tuple[str, ...]) -> Reading:
        return Reading(
            tenant=tenant,
            sensor_id=sensor,
            quantity="pm2_5",
            value=minute + 1.0,
            unit="ug/m3",
            observed_at=T0 + timedelta(minutes=minute),
            received_at=T0 + timedelta(minutes=minute, seconds=1),
            source_format="json",
            message_id=f"{sensor}-{minute}",
            quality_flags=flags,
        )

    writer = InfluxWriter(settings.influx)
    writer.write(
        [
            reading("flagged-before", 0, ("spike",)),
            reading("flagged-before", 1, ()),
            reading("flagged-now", 0, ()),
            reading("flagged-now", 1, ("stuck",)),
        ]
    )
    older_worker = (  # the line an older worker wrote for a reading without flags
        f"reading,privacy=open,quantity=pm2_5,sensor_id=empty-field,tenant={tenant} "
        'message_id="e-1",quality_flags="",received_at="2026-11-20T08:00:01+00:00",'
        f'source_format="json",unit="ug/m3",value=1 {int(T0.timestamp()) * 10**9}'
    )
    writer.close()
    with InfluxDBClient(url=settings.influx.url, token="", org=settings.influx.org) as influx:
        influx.write_api(write_options=SYNCHRONOUS).write(
            settings.influx.raw_bucket, settings.influx.org, older_worker
        )

    body = client.get("/v1/sensors", params={"tenant": tenant}).json()
    flags = {s["id"]: s["quantities"][0]["last_quality_flags"] for s in body["data"]}
    assert flags == {"flagged-before": [], "flagged-now": ["stuck"], "empty-field": []}
    rows = client.get(
        "/v1/sensors/flagged-before/observations", params={"tenant": tenant, **RANGE}
    ).json()["data"]
    assert [r["quality_flags"] for r in rows] == [["spike"], []]
