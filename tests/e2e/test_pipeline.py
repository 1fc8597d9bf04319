"""Simulator → MQTT → ingest → Kafka → Faust worker → InfluxDB → API, as separate processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from simulators.publisher import connect, publish
from simulators.town import make_town, messages
from tests.support import REPO, unique, wait_for
from urbanpulse.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Platform:
    """The ingest, worker and API processes of one test, with their own topics and port."""

    def __init__(self, tenant: str, logs: Path, extra_env: dict[str, str] | None = None) -> None:
        self.tenant = tenant
        self.port = free_port()
        self.logs = logs
        self.env = (
            os.environ
            | {
                "URBANPULSE_MQTT__CLIENT_ID": unique("e2e-ingest"),
                "URBANPULSE_MQTT__TOPICS": json.dumps([f"urbanpulse/{tenant}/+/+"]),
                "URBANPULSE_KAFKA__READINGS_TOPIC": unique("e2e-readings"),
                "URBANPULSE_KAFKA__DEADLETTER_TOPIC": unique("e2e-deadletter"),
                "URBANPULSE_KAFKA__PARTITIONS": "2",
                "URBANPULSE_WORKER__APP_ID": unique("e2e-worker"),
                "URBANPULSE_WORKER__DATADIR": str(logs / "worker-data"),
                "URBANPULSE_API__PORT": str(self.port),
            }
            | (extra_env or {})
        )
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        for name in ("ingest", "worker", "api"):
            with (self.logs / f"{name}.log").open("wb") as log:  # the child keeps its own copy
                self.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "urbanpulse.cli", name],
                    cwd=REPO,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )

    def stop(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{name} exited with {process.returncode}:\n{tail}")

    def get(self, path: str, **query: str) -> dict[str, object]:
        url = f"http://127.0.0.1:{self.port}{path}?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)  # type: ignore[no-any-return]


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    running = Platform(unique("e2e"), tmp_path)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def api_ready(platform: Platform) -> bool:
    platform.check_alive()
    try:
        return platform.get("/health")["status"] == "ok"
    except OSError:
        return False


@pytest.mark.timeout(300)
def test_every_simulated_reading_comes_back_from_the_api_unchanged(platform: Platform) -> None:
    town = make_town(4, seed=3)
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(minutes=10)
    sent = list(messages(platform.tenant, town, start, timedelta(minutes=1), rounds=10, seed=3))
    expected = {
        (msg.topic.split("/")[2], r["quantity"], r["time"], r["value"], r["unit"])
        for _, msg in sent
        for r in msg.readings
    }
    wait_for(lambda: api_ready(platform), 90, "the API to report every dependency healthy")
    client = connect(Settings().mqtt, client_id=unique("e2e-sim"))
    try:
        summary = publish(client, sent, realtime=False)
    finally:
        client.disconnect()
        client.loop_stop()
    assert summary.readings == len(expected)

    def stored() -> set[tuple[object, ...]] | None:
        platform.check_alive()
        found = set()
        for sensor in town:
            body = platform.get(
                f"/v1/sensors/{sensor.sensor_id}/observations",
                tenant=platform.tenant,
                limit="1000",
                **{"from": start.isoformat(), "to": end.isoformat()},
            )
            found |= {
                (o["sensor_id"], o["quantity"], o["time"], o["value"], o["unit"])
                for o in body["data"]  # type: ignore[attr-defined]
            }
        return found if len(found) >= len(expected) else None

    found = wait_for(stored, 120, f"all {len(expected)} readings in the API")
    assert found == expected
    listed = platform.get("/v1/sensors", tenant=platform.tenant)["data"]
    assert {s["id"] for s in listed} == {s.sensor_id for s in town}  # type: ignore[index]
