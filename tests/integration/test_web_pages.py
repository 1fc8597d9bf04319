"""The web front end's routes on real InfluxDB and Kafka: pages, map data, overview, docs, assets.

A tenant of its own gets a small town: two districts of placed sensors (air and noise), one
stale sensor, one flagged reading, one sensor without a position, and alerts. The pages are
checked as HTML (the browser tests in tests/e2e/test_web_browser.py run them in Chromium).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from confluent_kafka import Producer
from fastapi.testclient import TestClient
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

from api.app import create_app
from streams.influx_writer import InfluxWriter
from streams.points import SensorLabels
from tests.support import isolated_settings, unique
from urbanpulse.model import DeadLetter, Location, Reading

NOW = datetime.now(UTC).replace(microsecond=0)
# sensor -> (district, position, quantities with (value, age, flags))
TOWN: dict[
    str, tuple[str | None, Location | None, dict[str, tuple[float, timedelta, tuple[str, ...]]]]
] = {
    "air-1": (
        "centrum",
        Location(lat=52.090, lon=5.110),
        {"pm2_5": (7.0, timedelta(minutes=2), ()), "temperature": (11.0, timedelta(minutes=2), ())},
    ),
    "air-2": (
        "centrum",
        Location(lat=52.095, lon=5.125),
        {"pm2_5": (31.0, timedelta(minutes=3), ("spike",))},
    ),
    "air-3": (
        "centrum",
        Location(lat=52.085, lon=5.130),
        {"pm2_5": (12.0, timedelta(hours=5), ())},
    ),
    "noise-1": (
        "west",
        Location(lat=52.092, lon=5.080),
        {"noise_level": (58.0, timedelta(minutes=1), ())},
    ),
    "noise-2": (
        "west",
        Location(lat=52.080, lon=5.085),
        {"noise_level": (71.0, timedelta(minutes=1), ())},
    ),
    "noise-3": (
        "west",
        Location(lat=52.086, lon=5.070),
        {"noise_level": (44.0, timedelta(minutes=1), ())},
    ),
    "wx-1": (None, None, {"temperature": (9.5, timedelta(minutes=4), ())}),
}


def town_readings(tenant: str) -> tuple[list[Reading], dict[bytes, SensorLabels]]:
    readings, labels = [], {}
    for sensor_id, (district, where, quantities) in TOWN.items():
        for quantity, (value, age, flags) in quantities.items():
            reading = Reading(
                tenant=tenant,
                sensor_id=sensor_id,
                quantity=quantity,
                value=value,
                unit={"pm2_5": "ug/m3", "temperature": "Cel", "noise_level": "dB"}[quantity],
                observed_at=NOW - age,
                received_at=NOW - age,
                location=where,
                source_format="json",
                message_id=f"{sensor_id}-{quantity}",
                quality_flags=flags,
            )
            readings.append(reading)
            labels[reading.key] = SensorLabels(district=district)
    return readings, labels


def alert_point(tenant: str, sensor: str, quantity: str, start: datetime, open_: bool) -> Point:
    return (
        Point("alert")
        .tag("tenant", tenant)
        .tag("sensor_id", sensor)
        .tag("rule", f"{quantity}_high")
        .tag("quantity", quantity)
        .field("state", "open" if open_ else "closed")
        .field("started_at", start.isoformat().replace("+00:00", "Z"))
        .field("ended_at", "" if open_ else (start + timedelta(minutes=10)).isoformat())
        .field("value", 55.5)
        .field("message", f"{quantity} above threshold")
        .time(start, WritePrecision.NS)
    )


def dead_letter(topic: str, stage: str, reason: str, payload: bytes) -> bytes:
    letter = DeadLetter(
        reason=reason,
        detail="test",
        stage=stage,
        topic=topic,
        payload_b64=base64.b64encode(payload).decode(),
        received_at=NOW,
    )
    return letter.to_bytes()


@pytest.fixture(scope="module")
def tenant() -> str:
    return unique("web")


@pytest.fixture(scope="module")
def client(tenant: str) -> Iterator[TestClient]:
    settings = isolated_settings(tenant)
    readings, labels = town_readings(tenant)
    writer = InfluxWriter(settings.influx)
    writer.write(readings, labels)
    writer.close()
    influx = InfluxDBClient(url=settings.influx.url, token="", org=settings.influx.org)
    influx.write_api(write_options=SYNCHRONOUS).write(
        settings.influx.aggregate_bucket,
        settings.influx.org,
        [
            alert_point(tenant, "air-2", "pm2_5", NOW - timedelta(hours=1), open_=True),
            alert_point(tenant, "noise-2", "noise_level", NOW - timedelta(hours=3), open_=False),
            alert_point(tenant, "noise-2", "noise_level", NOW - timedelta(days=3), open_=False),
        ],
    )
    influx.close()
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap})
    reading = json.dumps({"tenant": tenant, "sensor_id": "air-1", "quantity": "pm2_5"}).encode()
    for value in (
        dead_letter(f"urbanpulse/{tenant}/air-1/json", "ingest", "invalid_json", b"{oops"),
        dead_letter(f"urbanpulse/{tenant}/air-1/json", "ingest", "invalid_json", b"{oops"),
        dead_letter("readings", "streams", "out_of_range", reading),
        dead_letter("urbanpulse/someone-else/x/json", "ingest", "invalid_json", b"{"),
        b"not a dead letter at all",
    ):
        producer.produce(settings.kafka.deadletter_topic, value)
    assert producer.flush(30) == 0
    settings.web.tenant = tenant
    with TestClient(create_app(settings)) as test_client:
        yield test_client


class Links(HTMLParser):
    """Every src/href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def local_assets(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    return [u for u in parser.urls if u.startswith("/web/static/")]


def test_the_map_data_is_what_v1_latest_publishes(client: TestClient, tenant: str) -> None:
    doc = client.get("/web/map.json", params={"tenant": tenant}).json()
    latest = client.get("/v1/latest", params={"tenant": tenant}).json()
    from_map = {(s["id"], q, r["value"]) for s in doc["sensors"] for q, r in s["readings"].items()}
    from_latest = {
        (f["properties"]["sensor_id"], f["properties"]["quantity"], f["properties"]["value"])
        for f in latest["features"]
    }
    assert from_map == from_latest and len(from_map) == 8
    by_id = {s["id"]: s for s in doc["sensors"]}
    assert by_id["air-3"]["readings"]["pm2_5"]["stale"] is True
    assert by_id["air-1"]["readings"]["pm2_5"]["stale"] is False
    assert by_id["air-2"]["readings"]["pm2_5"]["flags"] == ["spike"]
    assert by_id["air-1"]["district"] == "centrum" and by_id["air-1"]["domain"] == "air"
    assert by_id["wx-1"]["lat"] is None
    outlines = {d["id"]: d["outline"] for d in doc["districts"]}
    assert set(outlines) == {"centrum", "west"} and all(len(o) == 3 for o in outlines.values())
    assert doc["quantities"] == ["pm2_5", "noise_level", "temperature"]
    assert doc["scales"]["quantities"]["noise_level"]["unit"] == "dB(A)"


def test_the_map_data_has_an_etag_and_is_gzipped(client: TestClient, tenant: str) -> None:
    first = client.get("/web/map.json", params={"tenant": tenant})
    assert first.headers["content-encoding"] == "gzip" and first.headers["etag"]
    again = client.get(
        "/web/map.json", params={"tenant": tenant}, headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304


def test_the_map_page_in_the_browsers_language(client: TestClient, tenant: str) -> None:
    page = client.get("/", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert page.status_code == 200 and page.headers["content-language"] == "de"
    assert '<html lang="de">' in page.text and "Sensorkarte der Stadt" in page.text
    assert f'data-tenant="{tenant}"' in page.text  # web.tenant when the URL names none
    assert "default-src 'self'" in page.headers["content-security-policy"]
    strings = re.search(
        r'<script type="application/json" id="up-strings">(.*?)</script>', page.text
    )
    assert strings and json.loads(strings.group(1))["map.title"] == "Sensorkarte der Stadt"


def test_the_language_switch_sticks_in_a_cookie(client: TestClient) -> None:
    switched = client.get("/?lang=nl", headers={"Accept-Language": "de"})
    assert '<html lang="nl">' in switched.text and switched.cookies.get("lang") == "nl"
    later = client.get("/overview", headers={"Accept-Language": "de"})
    assert '<html lang="nl">' in later.text
    client.cookies.clear()


def test_every_asset_a_page_names_is_served(client: TestClient, tenant: str) -> None:
    pages = ["/", f"/sensors/air-1?tenant={tenant}", f"/overview?tenant={tenant}"]
    assets = {a for p in pages for a in local_assets(client.get(p).text)}
    assert len(assets) >= 8
    for asset in assets:
        answer = client.get(asset)
        assert answer.status_code == 200, asset
        assert answer.headers["cache-control"] == "public, max-age=86400"


def test_static_files_never_leave_their_folder(client: TestClient) -> None:
    for path in ("/web/static/../pages.py", "/web/static/%2e%2e/pages.py", "/web/static/nope.js"):
        assert client.get(path).status_code == 404, path


def test_a_sensor_page_has_values_flags_downloads_and_licence(
    client: TestClient, tenant: str
) -> None:
    page = client.get("/sensors/air-2", params={"tenant": tenant}).text
    assert "Sensor air-2" in page and "centrum" in page
    assert "31.0 µg/m³" in page and "poor" in page  # EAQI band of 31 µg/m³ PM2.5
    assert "jumped more than is plausible" in page  # the spike flag, in words
    assert "format=csv" in page and "window=1h" in page
    assert "https://creativecommons.org/licenses/by/4.0/" in page
    for url in re.findall(r'href="(/v1/sensors/air-2/[^"]+)"', page):
        assert client.get(url.replace("&amp;", "&")).status_code == 200, url


def test_an_unknown_sensor_is_a_page_saying_so(client: TestClient, tenant: str) -> None:
    page = client.get("/sensors/nobody", params={"tenant": tenant, "lang": "es"})
    assert page.status_code == 404 and "Sensor no encontrado" in page.text


def test_the_overview_counts_sensors_and_alerts_per_domain(client: TestClient, tenant: str) -> None:
    page = client.get("/overview", params={"tenant": tenant}).text
    rows = dict(re.findall(r'<tr data-domain="(\w+)">(.*?)</tr>', page, re.S))
    numbers = {d: re.findall(r'<td class="num[^"]*">(\d+)</td>', row) for d, row in rows.items()}
    # sensors, reporting, silent, open alerts, alerts started in 24 h
    assert numbers["air"] == ["3", "2", "1", "1", "1"]
    assert numbers["noise"] == ["3", "3", "0", "0", "1"]
    assert numbers["weather"] == ["1", "1", "0", "0", "0"]
    assert "air-3" in page  # the silent one is listed


def test_dead_letters_are_counted_never_shown(client: TestClient, tenant: str) -> None:
    answer = client.get("/v1/deadletters", params={"tenant": tenant}).json()
    assert answer["total"] == 3 and answer["truncated"] is False
    assert [(c["stage"], c["reason"], c["domain"], c["count"]) for c in answer["counts"]] == [
        ("ingest", "invalid_json", None, 2),
        ("streams", "out_of_range", "air", 1),
    ]
    everyone: dict[str, Any] = client.get("/v1/deadletters").json()
    assert everyone["total"] == 5  # the other tenant's letter, and the unreadable one
    assert "oops" not in json.dumps(everyone)
    assert client.get("/v1/deadletters", params={"hours": 0}).status_code == 400


def test_the_docs_are_served_from_vendored_assets(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200
        assert "http" not in "".join(re.findall(r'(?:src|href)="([^"]+)"', page.text)), path
        for asset in re.findall(r'"(/web/static/vendor/[^"]+)"', page.text):
            assert client.get(asset).status_code == 200, asset
    assert client.get("/docs/oauth2-redirect").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {t["name"] for t in schema["tags"]} >= {"sensors", "operations"}
    latest = schema["paths"]["/v1/latest"]["get"]["responses"]["200"]["content"]
    assert latest["application/geo+json"]["example"]["type"] == "FeatureCollection"
