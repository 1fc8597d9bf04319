"""The web pages in a real browser: headless Debian Chromium against the running platform.

A small town of its own (tenant, topics, registry with districts) goes through real ingest,
worker and API processes on the shared Mosquitto, Kafka and InfluxDB. Chromium, whose network
reaches 127.0.0.1 only, then opens the map, a sensor page, the staff overview (with the
scorecard, once ``urbanpulse kpis`` ran), the experiments page and the API docs:
every request stays on 127.0.0.1, there is no console error, axe-core finds no serious or
critical violation, the map shows one marker per ``/v1/latest`` feature of each quantity, a
reading published over MQTT reaches the open map within seconds, and the keyboard reaches a
marker and opens it.

``URBANPULSE_SCREENSHOTS=docs/img`` makes the test write the map and sensor page screenshots
there (the pictures of docs/web.md and the README); otherwise into the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from simulators.publisher import connect, publish
from simulators.town import Message, SimSensor, make_town, messages
from tests.e2e.browser import Browser, open_browser, serious
from tests.support import REPO, Child, free_port, http_get, unique, wait_for
from urbanpulse.settings import Settings

SENSORS = 24  # make_town cycles weather, air, noise
SEED = 5
UNREGISTERED = "noise-024"  # flagged ``unregistered`` by the worker: a red ring on the map
HISTORY = timedelta(hours=6)
STEP = timedelta(minutes=10)
LIVE_VALUE = 61.6
LIVE_WITHIN_S = 10.0


@dataclass
class Town:
    """The running platform of this module and what it was sent."""

    tenant: str
    base: str
    expected_features: int
    env: dict[str, str] | None = None  # the platform's settings, for one more command
    registry: Path | None = None

    def get(self, path: str, **query: str) -> Any:
        status, body = http_get(f"{self.base}{path}?{urllib.parse.urlencode(query)}", 30)
        assert status == 200, (path, status, body[:300])
        return json.loads(body)


def district(sensor: SimSensor) -> str:
    """Three districts side by side, west to east, as the town lies."""
    return "west" if sensor.lon < 5.11 else "centrum" if sensor.lon < 5.13 else "oost"


def registry(tenant: str, path: Path) -> None:
    sensors = [
        {"tenant": tenant, "sensor_id": s.sensor_id, "district": district(s)}
        for s in make_town(SENSORS, seed=SEED)
        if s.sensor_id != UNREGISTERED
    ]
    path.write_text(yaml.safe_dump({"sensors": sensors}))


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Town]:
    tenant = unique("e2e-web")
    logs = tmp_path_factory.mktemp("web-e2e")
    registry(tenant, logs / "registry.yaml")
    port = free_port()
    env = os.environ | {
        "URBANPULSE_MQTT__CLIENT_ID": unique("e2e-web-ingest"),
        "URBANPULSE_MQTT__TOPICS": json.dumps([f"urbanpulse/{tenant}/+/+"]),
        "URBANPULSE_KAFKA__READINGS_TOPIC": unique("e2e-web-readings"),
        "URBANPULSE_KAFKA__DEADLETTER_TOPIC": unique("e2e-web-deadletter"),
        "URBANPULSE_KAFKA__OBSERVATIONS_TOPIC": unique("e2e-web-observations"),
        "URBANPULSE_KAFKA__PARTITIONS": "2",
        "URBANPULSE_WORKER__APP_ID": unique("e2e-web-worker"),
        "URBANPULSE_WORKER__DATADIR": str(logs / "worker-data"),
        "URBANPULSE_STREAMS__REGISTRY_PATH": str(logs / "registry.yaml"),
        "URBANPULSE_API__PORT": str(port),
        "URBANPULSE_API__SENSORS_CACHE_S": "1",
        "URBANPULSE_WEB__TENANT": tenant,
    }
    children = [
        Child.urbanpulse([name], env, logs / f"{name}.log") for name in ("ingest", "worker", "api")
    ]
    try:
        sensors = make_town(SENSORS, seed=SEED)
        end = datetime.now(UTC).replace(microsecond=0)
        rounds = int(HISTORY / STEP) + 1
        sent = list(messages(tenant, sensors, end - HISTORY, STEP, rounds=rounds, seed=SEED))
        features = len({(m.topic, r["quantity"]) for _, m in sent for r in m.readings})
        running = Town(tenant, f"http://127.0.0.1:{port}", features)
        running.env, running.registry = env, logs / "registry.yaml"

        def api_up() -> bool:
            for child in children:
                child.check_alive()
            return http_get(f"{running.base}/health", 5)[0] == 200

        wait_for(api_up, 90, "the API to report every dependency healthy")
        send(sent)

        def all_latest() -> bool:
            for child in children:
                child.check_alive()
            latest = running.get("/v1/latest", tenant=tenant)["features"]
            return len(latest) == features and all(
                f["properties"]["time"] == end.isoformat().replace("+00:00", "Z") for f in latest
            )

        wait_for(all_latest, 120, f"all {features} latest readings in the API")
        yield running
    finally:
        for child in children:
            child.stop()


def send(sent: list[tuple[datetime, Message]]) -> None:
    client = connect(Settings().mqtt, client_id=unique("e2e-web-sim"))
    try:
        publish(client, sent, realtime=False)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with open_browser("en-GB") as session:
        yield session


def until(browser: Browser, css: str, timeout_s: float = 30) -> None:
    WebDriverWait(browser.driver, timeout_s, poll_frequency=0.1).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, css), f"nothing matched {css!r}"
    )


def check_clean(browser: Browser, page: str) -> None:
    """No request left 127.0.0.1, no console error, no serious accessibility violation."""
    assert browser.foreign_requests() == [], page
    assert browser.console_errors() == [], page
    assert serious(browser.axe()) == [], page


def screenshot(browser: Browser, name: str, fallback: Path) -> None:
    folder = os.environ.get("URBANPULSE_SCREENSHOTS")
    browser.screenshot((REPO / folder if folder else fallback) / f"{name}.png")


def markers(browser: Browser) -> list[Any]:
    return browser.driver.find_elements(By.CSS_SELECTOR, "#map .up-marker")


def test_the_map_shows_every_sensor_and_a_live_reading(
    town: Town, browser: Browser, tmp_path: Path
) -> None:
    browser.get(f"{town.base}/?tenant={town.tenant}")
    until(browser, "#map[data-ready]")
    check_clean(browser, "map as it opens")
    for marker in markers(browser):  # each marker says what it shows, in colour and in words
        assert marker.get_attribute("aria-label"), marker.get_attribute("outerHTML")
        assert "--marker: #" in (marker.get_attribute("style") or "")
    select = Select(browser.driver.find_element(By.ID, "quantity"))
    offered = [o.get_attribute("value") for o in select.options]
    assert offered == ["pm2_5", "pm10", "noise_level", "temperature", "relative_humidity"]
    shown = 0
    for quantity in offered:
        select.select_by_value(quantity)
        latest = town.get("/v1/latest", tenant=town.tenant, quantity=quantity)["features"]
        placed = [f for f in latest if f["geometry"] is not None]
        assert len(markers(browser)) == len(placed) > 0, quantity
        rows = browser.driver.find_elements(By.CSS_SELECTOR, "#sensor-table tbody tr")
        assert len(rows) == len(latest), quantity
        shown += len(placed)
    assert (
        shown
        == town.expected_features
        == len(town.get("/v1/latest", tenant=town.tenant)["features"])
    )
    select.select_by_value("pm2_5")
    outlines = browser.driver.find_elements(By.CSS_SELECTOR, "#map path.district")
    districts = {district(s) for s in make_town(SENSORS, seed=SEED)}
    assert len(outlines) == len(districts) == 3
    flagged = browser.driver.find_elements(By.CSS_SELECTOR, "#map .up-marker.is-flagged")
    assert flagged == [] and UNREGISTERED.startswith("noise")  # flagged on the noise map only
    check_clean(browser, "map")

    # A reading published over MQTT now reaches the open map through the whole platform.
    until(browser, "#live-status[data-live='open']")
    air = next(s for s in make_town(SENSORS, seed=SEED) if s.sensor_id.startswith("air"))
    now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    stamp = now.isoformat().replace("+00:00", "Z")
    payload = {
        "readings": [
            {
                "time": stamp,
                "quantity": "pm2_5",
                "value": LIVE_VALUE,
                "unit": "ug/m3",
                "lat": air.lat,
                "lon": air.lon,
            }
        ]
    }
    message = Message(
        f"urbanpulse/{town.tenant}/{air.sensor_id}/json", json.dumps(payload).encode(), ()
    )
    sent_at = time.monotonic()
    send([(now, message)])
    cell = f"#sensor-table tr[data-sensor='{air.sensor_id}'] td.value[data-value='{LIVE_VALUE}']"
    until(browser, cell, timeout_s=LIVE_WITHIN_S)
    took = time.monotonic() - sent_at
    marker = browser.driver.find_element(
        By.CSS_SELECTOR, f"#map .up-marker[data-sensor='{air.sensor_id}']"
    )
    assert marker.get_attribute("data-value") == str(LIVE_VALUE)
    assert "very poor" in (
        marker.get_attribute("aria-label") or ""
    )  # EAQI band of 61.6 µg/m³ (50-75)
    print(f"live reading on the map {took:.2f} s after it was published over MQTT")
    assert browser.console_errors() == []
    screenshot(browser, "map", tmp_path)
    select.select_by_value("noise_level")
    flagged = browser.driver.find_elements(By.CSS_SELECTOR, "#map .up-marker.is-flagged")
    assert [m.get_attribute("data-sensor") for m in flagged] == [UNREGISTERED]


def test_the_keyboard_reaches_a_marker_and_opens_it(town: Town, browser: Browser) -> None:
    browser.get(f"{town.base}/?tenant={town.tenant}")
    until(browser, "#map[data-ready]")
    body = browser.driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    first = browser.driver.switch_to.active_element
    assert first.get_attribute("class") == "skip"  # the skip link comes first
    for _ in range(40):
        active = browser.driver.switch_to.active_element
        if "up-marker" in (active.get_attribute("class") or ""):
            break
        active.send_keys(Keys.TAB)
    else:
        raise AssertionError("40 tabs never reached a marker")
    label = active.get_attribute("aria-label") or ""
    assert label.startswith(active.get_attribute("data-sensor") or "?")
    active.send_keys(Keys.ENTER)
    until(browser, ".leaflet-popup a[href^='/sensors/']")


def test_a_sensor_page_shows_its_chart(town: Town, browser: Browser, tmp_path: Path) -> None:
    sensor = next(s for s in make_town(SENSORS, seed=SEED) if s.sensor_id.startswith("air"))
    browser.get(f"{town.base}/sensors/{sensor.sensor_id}?tenant={town.tenant}")
    until(browser, "#charts[data-ready]")
    assert browser.driver.find_elements(By.CSS_SELECTOR, "#chart-day canvas")
    assert browser.driver.find_elements(By.CSS_SELECTOR, "#chart-week canvas")
    status = browser.driver.find_element(By.ID, "chart-status").text
    raw = int(status.split()[0])
    assert raw >= int(HISTORY / STEP), status  # the day's readings of the chosen quantity
    check_clean(browser, "sensor")
    browser.driver.set_window_size(1280, 1500)  # the picture shows the charts too
    try:
        screenshot(browser, "sensor", tmp_path)
    finally:
        browser.driver.set_window_size(1280, 900)


def test_the_staff_overview(town: Town, browser: Browser) -> None:
    browser.get(f"{town.base}/overview?tenant={town.tenant}&lang=de")
    until(browser, "#deadletters[data-ready]")
    assert browser.driver.find_element(By.TAG_NAME, "h1").text == "Übersicht für Mitarbeitende"
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "tr[data-domain]")
    assert {r.get_attribute("data-domain") for r in rows} == {"air", "noise", "weather"}
    check_clean(browser, "overview")


@pytest.fixture(scope="module")
def indicators(town: Town) -> Town:
    """The town with an experiment in its registry and its indicators computed once by
    ``urbanpulse kpis`` (as `urbanpulse up` runs it), against the same services."""
    assert town.env is not None and town.registry is not None
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    document = yaml.safe_load(town.registry.read_text())
    document["experiments"] = [
        {
            "id": f"quiet-{town.tenant}",
            "name": "Quieter centre",
            "tenant": town.tenant,
            "quantity": "noise_level",
            "treated": {"district": "centrum"},
            "control": {"district": "oost"},
            "before": {
                "from": (hour - timedelta(hours=5)).isoformat(),
                "to": (hour - timedelta(hours=2)).isoformat(),
            },
            "after": {"from": (hour - timedelta(hours=2)).isoformat()},
        }
    ]
    town.registry.write_text(yaml.safe_dump(document))
    job = subprocess.run(
        [sys.executable, "-m", "urbanpulse.cli", "kpis", "--tenant", town.tenant],
        cwd=REPO,
        env=town.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert job.returncode == 0, job.stdout[-2000:] + job.stderr[-2000:]
    return town


def test_the_scorecard_and_an_experiment_render(indicators: Town, browser: Browser) -> None:
    town = indicators
    browser.get(f"{town.base}/overview?tenant={town.tenant}")
    until(browser, "#deadletters[data-ready]")
    score = browser.driver.find_element(By.CSS_SELECTOR, "#scorecard .score-number")
    assert score.text.isdigit() and 0 <= int(score.text) <= 100, score.text
    parts = browser.driver.find_elements(By.CSS_SELECTOR, "#scorecard tr[data-component]")
    assert {"completeness", "uptime"} <= {p.get_attribute("data-component") for p in parts}
    worst = browser.driver.find_elements(By.CSS_SELECTOR, "#scorecard tr[data-sensor] a")
    assert worst and all(w.get_attribute("href") for w in worst)
    check_clean(browser, "overview with its scorecard")

    browser.get(f"{town.base}/experiments?tenant={town.tenant}&lang=nl")
    until(browser, "article.experiment[data-verdict]")
    (article,) = browser.driver.find_elements(By.CSS_SELECTOR, "article.experiment")
    assert article.find_element(By.TAG_NAME, "h2").text == "Quieter centre"
    sides = article.find_elements(By.CSS_SELECTOR, "tr[data-side]")
    assert [s.get_attribute("data-side") for s in sides] == [
        "treated_before",
        "treated_after",
        "control_before",
        "control_after",
    ]
    assert "Behandeld, ervoor" in article.text  # in the language asked for
    check_clean(browser, "experiments")
    body = browser.driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    for _ in range(30):  # the keyboard reaches the experiment's data link
        active = browser.driver.switch_to.active_element
        if (active.get_attribute("href") or "").endswith(f"/v1/experiments/quiet-{town.tenant}"):
            break
        active.send_keys(Keys.TAB)
    else:
        raise AssertionError("30 tabs never reached the experiment's data link")


@pytest.mark.parametrize(("path", "ready"), [("/docs", ".swagger-ui .opblock"), ("/redoc", "h1")])
def test_the_api_docs_render_offline(town: Town, browser: Browser, path: str, ready: str) -> None:
    browser.get(f"{town.base}{path}")
    until(browser, ready)
    text = browser.driver.find_element(By.TAG_NAME, "body").text
    assert "UrbanPulse open data" in text and "/v1/latest" in text
    assert browser.foreign_requests() == []
    assert browser.console_errors() == []
