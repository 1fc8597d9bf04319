"""The live feed /v1/stream on a real uvicorn server, real Kafka, and a real stream worker.

Each test has its own topics and tenants. Clients are real HTTP clients reading the event
stream as it arrives (Starlette's TestClient does not stream). The first test produces to the
observations topic directly (exact filters, fields, ids, heartbeats); the last one runs
``urbanpulse worker`` and checks that what the worker stored, and only that, reaches a client.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from confluent_kafka import Producer
from fastapi import FastAPI

from api.app import create_app
from api.formats import OBSERVATION_FIELDS, row_dict
from api.stream import observation_of
from tests.support import KAFKA_BOOTSTRAP, REPO, consume_until, port_open, unique, wait_for
from urbanpulse.feed import decode_feed
from urbanpulse.kafka import ensure_topics
from urbanpulse.model import Location, Reading, validated
from urbanpulse.settings import ApiSettings, Settings

BOX = "5.0,52.0,5.2,52.2"
INSIDE = Location(lat=52.1, lon=5.1)
OUTSIDE = Location(lat=52.1, lon=6.0)


def stream_settings(**api: Any) -> Settings:
    """Settings with this test's own topics; one partition keeps the produced order."""
    kafka = Settings().kafka.model_copy(
        update={
            "readings_topic": unique("it-sse-readings"),
            "deadletter_topic": unique("it-sse-deadletter"),
            "alerts_topic": unique("it-sse-alerts"),
            "observations_topic": unique("it-sse-observations"),
            "partitions": 1,
        }
    )
    ensure_topics(kafka)
    return Settings(kafka=kafka, api=ApiSettings(stream_heartbeat_s=0.5, **api))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """The API app under uvicorn in a thread (no signal handlers), on a free port."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.url = f"http://127.0.0.1:{free_port()}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=int(self.url.rsplit(":", 1)[1]),
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=3,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 20, "uvicorn to start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        assert not self.thread.is_alive(), "uvicorn did not stop"


class SseClient:
    """Reads one event stream in a thread, parsing messages as the SSE spec says."""

    def __init__(
        self, url: str, params: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self.messages: list[dict[str, str]] = []
        self.status = 0
        self.headers: dict[str, str] = {}
        self.error: Exception | None = None
        self.ended = False
        self._stop = threading.Event()
        self._open = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(url, params, headers or {}), daemon=True
        )
        self._thread.start()
        assert self._open.wait(30), "the stream did not answer"

    def _run(self, url: str, params: dict[str, Any], headers: dict[str, str]) -> None:
        try:
            with (
                httpx2.Client(timeout=10, headers=headers) as client,
                client.stream("GET", url, params=params) as response,
            ):
                self.status, self.headers = response.status_code, dict(response.headers)
                self._open.set()
                current: dict[str, str] = {}
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if not line:
                        if current:
                            self.messages.append(current)
                        current = {}
                        continue
                    name, _, value = line.partition(":")
                    current[name] = value.removeprefix(" ")
                self.ended = True  # the server ended the stream cleanly
        except Exception as err:  # kept for the test to look at
            self.error = err
        finally:
            self._open.set()

    def readings(self) -> list[dict[str, Any]]:
        return [json.loads(m["data"]) for m in self.messages if m.get("event") == "reading"]

    def close(self) -> None:
        self._stop.set()  # noticed at the next line: heartbeats come every 0.5 s
        self._thread.join(10)


def reading(tenant: str, sensor: str, quantity: str = "pm2_5", **changes: Any) -> Reading:
    now = datetime.now(UTC).replace(microsecond=0)
    fields: dict[str, Any] = {
        "tenant": tenant,
        "sensor_id": sensor,
        "quantity": quantity,
        "value": 12.5,
        "unit": {"pm2_5": "ug/m3", "temperature": "Cel", "battery_level": "%"}[quantity],
        "observed_at": now - timedelta(seconds=2),
        "received_at": now,
        "location": INSIDE,
        "source_format": "json",
        "message_id": unique("m"),
    }
    fields.update(changes)
    return validated(**fields)


def produce(topic: str, readings: list[Reading]) -> None:
    producer = Producer({"bootstrap.servers": KAFKA_BOOTSTRAP, "enable.idempotence": True})
    for r in readings:
        producer.produce(topic, key=r.key, value=r.to_bytes())
    assert producer.flush(30) == 0


def published(r: Reading) -> dict[str, Any]:
    """What /v1/observations would show of a stored reading."""
    return row_dict(observation_of(r))


@pytest.fixture
def settings() -> Settings:
    return stream_settings(stream_max_clients=3)


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    live = LiveServer(create_app(settings))
    try:
        yield live
    finally:
        if live.thread.is_alive():
            live.stop()


def test_filtered_readings_arrive_with_their_fields_and_nothing_else(
    settings: Settings, server: LiveServer
) -> None:
    tenant, other = unique("sse"), unique("sse-other")
    everything = SseClient(f"{server.url}/v1/stream", {"tenant": tenant})
    narrow = SseClient(
        f"{server.url}/v1/stream",
        {"tenant": tenant, "sensor_id": ["s1", "s2"], "quantity": "pm2_5", "bbox": BOX},
    )
    try:
        assert everything.status == narrow.status == 200
        assert everything.headers["content-type"].startswith("text/event-stream")
        assert everything.headers["cache-control"] == "no-store"
        sent = [
            reading(tenant, "s1", value=600, quality_flags=("spike",)),  # both
            reading(tenant, "s2", location=OUTSIDE),  # everything: outside the box
            reading(tenant, "s3"),  # everything: another sensor
            reading(tenant, "s1", "temperature", value=21.5),  # everything: another quantity
            reading(tenant, "s1", "battery_level", value=80),  # nobody: restricted
            reading(other, "s1"),  # nobody: another tenant
            reading(tenant, "s2", location=None),  # everything: no position, not in any box
            reading(tenant, "s1", value=99),  # both: the last one, on the same partition
        ]
        started = time.monotonic()
        produce(settings.kafka.observations_topic, sent)
        last = published(sent[-1])
        wait_for(
            lambda: last in everything.readings() and last in narrow.readings(),
            20,
            "the last reading on both streams",
        )
        latency = time.monotonic() - started
        print(f"\nlive feed: 8 readings produced → last one on both streams in {latency:.2f} s")
        assert everything.readings() == [published(sent[i]) for i in (0, 1, 2, 3, 6, 7)]
        assert narrow.readings() == [published(sent[i]) for i in (0, 7)]
        first = everything.readings()[0]
        assert tuple(first) == OBSERVATION_FIELDS
        assert first["quality_flags"] == ["spike"] and first["time"].endswith("Z")
        ids = [int(m["id"]) for m in everything.messages if m.get("event") == "reading"]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert {"": "heartbeat"} in everything.messages  # comments parse as an empty field
        assert other not in json.dumps(everything.messages + narrow.messages)
    finally:
        everything.close()
        narrow.close()


def test_too_many_streams_is_503_and_shutdown_stops_the_consumer() -> None:
    settings = stream_settings(stream_max_clients=1)
    server = LiveServer(create_app(settings))
    feed = server.app.state.live_feed
    one = SseClient(f"{server.url}/v1/stream", {})
    try:
        assert one.status == 200 and feed.running
        refused = httpx2.get(f"{server.url}/v1/stream", timeout=10)
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"]
        bad = httpx2.get(f"{server.url}/v1/stream", params={"bbox": "1,2"}, timeout=10)
        assert bad.status_code == 400 and bad.json()["detail"]
    finally:
        one.close()
    wait_for(lambda: len(feed.hub) == 0, 10, "the closed stream to free its slot")
    again = SseClient(f"{server.url}/v1/stream", {})
    assert again.status == 200
    again.close()
    server.stop()
    assert not feed.running, "the app's shutdown did not stop the live feed's consumer"


def test_one_client_holds_at_most_its_share_of_streams_others_still_get_theirs() -> None:
    key = "stream-key-0123456789abcdef"
    settings = stream_settings(stream_max_clients=3, stream_max_per_client=2, api_keys=[key])
    server = LiveServer(create_app(settings))
    feed = server.app.state.live_feed
    mine = [SseClient(f"{server.url}/v1/stream", {}) for _ in range(2)]
    keyed: SseClient | None = None
    try:
        assert [s.status for s in mine] == [200, 200]
        refused = httpx2.get(f"{server.url}/v1/stream", timeout=10)
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        assert "per client" in refused.json()["detail"]
        keyed = SseClient(f"{server.url}/v1/stream", {}, {"X-API-Key": key})  # another client
        assert keyed.status == 200
        full = httpx2.get(f"{server.url}/v1/stream", headers={"X-API-Key": key}, timeout=10)
        assert full.status_code == 503  # every slot taken: the total bound
    finally:
        for stream in [*mine, *([keyed] if keyed else [])]:
            stream.close()
    wait_for(lambda: len(feed.hub) == 0, 10, "the closed streams to free their slots")
    again = SseClient(f"{server.url}/v1/stream", {})
    assert again.status == 200  # the client's share is free again
    again.close()
    server.stop()


def test_sigterm_ends_open_streams_cleanly_and_stops_the_consumer(tmp_path: Path) -> None:
    """``urbanpulse api`` as in production: SIGTERM with a client connected exits at once."""
    settings = stream_settings()
    port = free_port()
    env = os.environ | {
        "URBANPULSE_KAFKA__OBSERVATIONS_TOPIC": settings.kafka.observations_topic,
        "URBANPULSE_LOG_LEVEL": "INFO",
    }
    log = tmp_path / "api.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "urbanpulse.cli", "api", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: port_open(port), 60, "urbanpulse api to listen")
        client = SseClient(f"{url}/v1/stream", {"tenant": unique("sse-term")})
        assert client.status == 200
        wait_for(lambda: client.messages, 10, "the opening message")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down cleanly
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        took = time.monotonic() - started
        client.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    text = log.read_text(errors="replace")
    print(f"\nSIGTERM with an open stream: exited in {took:.2f} s")
    assert client.ended and client.error is None, client.error
    assert "live feed stopped" in text, text[-2000:]
    assert "graceful shutdown exceeded" not in text


# --- with the real stream worker ------------------------------------------------------------


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``urbanpulse worker`` on this test's topics, with a registry placing sensor s1."""
    tenant = unique("sse-w")
    registry = tmp_path / "sensors.csv"
    registry.write_text(f"tenant,sensor_id,lat,lon\n{tenant},s1,{INSIDE.lat},{INSIDE.lon}\n")
    env = os.environ | {
        "URBANPULSE_KAFKA__READINGS_TOPIC": settings.kafka.readings_topic,
        "URBANPULSE_KAFKA__DEADLETTER_TOPIC": settings.kafka.deadletter_topic,
        "URBANPULSE_KAFKA__ALERTS_TOPIC": settings.kafka.alerts_topic,
        "URBANPULSE_KAFKA__OBSERVATIONS_TOPIC": settings.kafka.observations_topic,
        "URBANPULSE_KAFKA__PARTITIONS": "1",
        "URBANPULSE_WORKER__APP_ID": unique("it-sse-worker"),
        "URBANPULSE_WORKER__DATADIR": str(tmp_path / "worker"),
        "URBANPULSE_WORKER__BATCH_SECONDS": "0.2",
        "URBANPULSE_STREAMS__REGISTRY_PATH": str(registry),
    }
    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "urbanpulse.cli", "worker"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield tenant, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        else:
            print(log.read_text(errors="replace")[-3000:])


@pytest.mark.timeout(300)
def test_what_the_worker_stores_reaches_a_client_and_only_that(
    settings: Settings, server: LiveServer, worker: tuple[str, subprocess.Popen[bytes]]
) -> None:
    tenant, process = worker
    client = SseClient(f"{server.url}/v1/stream", {"tenant": tenant})
    try:
        assert client.status == 200
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        good = [
            reading(tenant, "s1", value=10, observed_at=start, location=None),
            reading(
                tenant, "s1", value=20, observed_at=start + timedelta(minutes=1), location=None
            ),
            reading(tenant, "s2", value=12, observed_at=start, location=OUTSIDE),
        ]
        restricted = reading(tenant, "s1", "battery_level", value=50, observed_at=start)
        out_of_range = reading(tenant, "s1", value=-1, observed_at=start + timedelta(minutes=2))
        produce(settings.kafka.readings_topic, [*good, restricted, out_of_range])

        def arrived() -> bool:
            assert process.poll() is None, "the worker exited (its log is printed below)"
            return len(client.readings()) >= len(good)

        wait_for(arrived, 180, "the worker's stored readings on the stream")

        # The worker published everything it stored, the restricted reading included (the API
        # filters it out); the out-of-range one went to the dead letters, not to the feed.
        def readings_in(values: list[bytes]) -> list[tuple[str, str, float]]:
            """Sensor, quantity and value of each reading of the topic's records (runs,
            ``urbanpulse.feed``)."""
            runs = [run for value in values for run in decode_feed(value) or []]
            return [(r.sensor_id, r.quantity, v) for r in runs for v in r.values]

        on_topic = consume_until(
            settings.kafka.bootstrap,
            settings.kafka.observations_topic,
            lambda values: len(readings_in(values)) >= 4,
            30,
        )
        stored = sorted(readings_in(on_topic))
        assert stored == [
            ("s1", "battery_level", 50),
            ("s1", "pm2_5", 10),
            ("s1", "pm2_5", 20),
            ("s2", "pm2_5", 12),
        ]
        time.sleep(1)  # anything wrongly sent to the client would be there by now
        got = sorted(client.readings(), key=lambda r: (r["sensor_id"], r["value"]))
        assert [(r["sensor_id"], r["quantity"], r["value"]) for r in got] == [
            ("s1", "pm2_5", 10),
            ("s1", "pm2_5", 20),
            ("s2", "pm2_5", 12),
        ]
        # as the worker stored them: s1 placed by the registry, s2 flagged unregistered
        assert [(r["lat"], r["lon"], r["quality_flags"]) for r in got] == [
            (INSIDE.lat, INSIDE.lon, []),
            (INSIDE.lat, INSIDE.lon, []),
            (OUTSIDE.lat, OUTSIDE.lon, ["unregistered"]),
        ]
    finally:
        client.close()
