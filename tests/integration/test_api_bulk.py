"""Daily bulk files (/v1/bulk) on real InfluxDB: listing, gzip CSV files, caching, errors.

Fixture readings of a tenant of its own on two past days (and a few today), in an open and a
restricted quantity, written through the stream worker's writer.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.formats import OBSERVATION_FIELDS
from streams.influx_writer import InfluxWriter
from tests.support import unique
from urbanpulse.model import Location, Reading
from urbanpulse.settings import ApiSettings, Settings

NOW = datetime.now(UTC)
DAY1 = (NOW - timedelta(days=3)).date()
DAY2 = (NOW - timedelta(days=2)).date()
EMPTY = (NOW - timedelta(days=4)).date()
SENSORS = {"b-1": Location(lat=52.1, lon=5.1), "b-2": None}
PER_DAY = {DAY1: 30, DAY2: 17}  # readings per sensor and quantity on each day
TODAY_READINGS = 3


def reading(tenant: str, sensor: str, quantity: str, unit: str, at: datetime, i: int) -> Reading:
    return Reading(
        tenant=tenant,
        sensor_id=sensor,
        quantity=quantity,
        value=i + 0.25,
        unit=unit,
        observed_at=at,
        received_at=at + timedelta(seconds=1),
        location=SENSORS[sensor],
        source_format="json",
        message_id=f"{sensor}-{quantity}-{at.isoformat()}",
        quality_flags=("spike",) if i == 1 else (),
    )


def readings(tenant: str) -> list[Reading]:
    out = []
    for day, n in PER_DAY.items():
        # Spread over the whole UTC day, first and last minute included: edges must hold.
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        step = (timedelta(days=1) - timedelta(minutes=1)) / (n - 1)
        for i in range(n):
            at = (midnight + i * step).replace(microsecond=0)
            for sensor in SENSORS:
                out.append(reading(tenant, sensor, "pm2_5", "ug/m3", at, i))
                out.append(reading(tenant, sensor, "rssi", "dB[mW]", at, i))  # restricted
    start = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    for i in range(TODAY_READINGS):
        out.append(reading(tenant, "b-1", "pm2_5", "ug/m3", start + i * (NOW - start) / 4, i))
    return out


@pytest.fixture(scope="module")
def tenant() -> str:
    name = unique("bulk")
    writer = InfluxWriter(Settings().influx)
    writer.write(readings(name))
    writer.close()
    return name


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bulk-cache")


@pytest.fixture(scope="module")
def client(cache_dir: Path) -> Iterator[TestClient]:
    settings = Settings(api=ApiSettings(bulk_days=7, bulk_cache_dir=str(cache_dir)))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def listing(client: TestClient, tenant: str) -> list[dict[str, Any]]:
    response = client.get("/v1/bulk", params={"tenant": tenant})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["licence"] == "https://creativecommons.org/licenses/by/4.0/"
    assert body["columns"] == list(OBSERVATION_FIELDS)
    files: list[dict[str, Any]] = body["data"]
    return files


def rows_of(content: bytes) -> list[dict[str, str]]:
    text = gzip.decompress(content).decode()
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == OBSERVATION_FIELDS
    return list(reader)


def test_listing_shows_both_days_and_today(client: TestClient, tenant: str) -> None:
    files = listing(client, tenant)
    found = {(f["quantity"], date.fromisoformat(f["date"])): f for f in files}
    today = NOW.date()
    assert set(found) == {("pm2_5", DAY1), ("pm2_5", DAY2), ("pm2_5", today)}, files
    for day, n in PER_DAY.items():
        entry = found[("pm2_5", day)]
        assert entry["readings"] == n * len(SENSORS)
        assert entry["final"] is True
        assert entry["url"].endswith(f"/v1/bulk/{tenant}/pm2_5/{day}.csv.gz")
    assert found[("pm2_5", today)]["readings"] == TODAY_READINGS
    assert found[("pm2_5", today)]["final"] is False


def test_past_day_file_is_the_days_readings(client: TestClient, tenant: str) -> None:
    response = client.get(f"/v1/bulk/{tenant}/pm2_5/{DAY1}.csv.gz")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/gzip"
    assert "content-encoding" not in response.headers  # the file itself is the gzip
    rows = rows_of(response.content)
    assert len(rows) == PER_DAY[DAY1] * len(SENSORS)
    assert {(r["tenant"], r["quantity"]) for r in rows} == {(tenant, "pm2_5")}
    assert {r["sensor_id"] for r in rows} == set(SENSORS)
    times = [datetime.fromisoformat(r["time"]) for r in rows]
    assert times == sorted(times)
    assert {t.date() for t in times} == {DAY1}
    assert sum(r["quality_flags"] == "spike" for r in rows) == len(SENSORS)
    located = [r for r in rows if r["sensor_id"] == "b-1"]
    assert all((r["lat"], r["lon"]) == ("52.1", "5.1") for r in located)
    assert all(r["unit"] == "ug/m3" for r in rows)


def test_past_day_is_cacheable_and_kept_on_disk(
    client: TestClient, tenant: str, cache_dir: Path
) -> None:
    url = f"/v1/bulk/{tenant}/pm2_5/{DAY2}.csv.gz"
    first = client.get(url)
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    assert etag.startswith('"') and first.headers["cache-control"] == "public, max-age=86400"
    kept = cache_dir / tenant / "pm2_5" / f"{DAY2}.csv.gz"
    assert kept.is_file() and kept.read_bytes() == first.content
    assert not list(kept.parent.glob(".part-*")), "a temporary file was left behind"
    again = client.get(url)  # now served from the file kept on disk
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["etag"] == etag
    assert len(rows_of(again.content)) == PER_DAY[DAY2] * len(SENSORS)
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    sizes = {f["date"]: f["size_bytes"] for f in listing(client, tenant)}
    assert sizes[DAY2.isoformat()] == len(first.content)


def test_today_is_short_lived(client: TestClient, tenant: str) -> None:
    response = client.get(f"/v1/bulk/{tenant}/pm2_5/{NOW.date()}.csv.gz")
    assert response.status_code == 200, response.text
    assert "etag" not in response.headers
    assert response.headers["cache-control"] == "public, max-age=30"
    assert len(rows_of(response.content)) == TODAY_READINGS


def problem(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail: str = response.json()["detail"]
    return detail


def test_restricted_quantity_and_empty_days_are_404(client: TestClient, tenant: str) -> None:
    assert "not published" in problem(client.get(f"/v1/bulk/{tenant}/rssi/{DAY1}.csv.gz"), 404)
    problem(client.get("/v1/bulk", params={"quantity": "rssi"}), 404)
    problem(client.get(f"/v1/bulk/{tenant}/pm2_5/{EMPTY}.csv.gz"), 404)
    problem(client.get(f"/v1/bulk/{unique('nobody')}/pm2_5/{DAY1}.csv.gz"), 404)
    old = NOW.date() - timedelta(days=30)  # before the offered days (bulk_days=7)
    assert "last 7 days" in problem(client.get(f"/v1/bulk/{tenant}/pm2_5/{old}.csv.gz"), 404)


@pytest.mark.parametrize("day", ["2026-13-01", "2026-02-30", "yesterday", "20261126", "1e9"])
def test_bad_dates_are_400(client: TestClient, tenant: str, day: str) -> None:
    problem(client.get(f"/v1/bulk/{tenant}/pm2_5/{day}.csv.gz"), 400)


def test_bad_ids_are_400(client: TestClient, tenant: str) -> None:
    problem(client.get(f"/v1/bulk/{tenant}/PM-2.5/{DAY1}.csv.gz"), 400)
    problem(client.get("/v1/bulk", params={"tenant": "a b"}), 400)
