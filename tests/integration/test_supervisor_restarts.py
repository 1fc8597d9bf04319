"""``urbanpulse up`` keeps the platform up: a SIGKILLed ingestor and worker come back, nothing lost.

The supervisor runs for real (``urbanpulse up --no-simulate``) with a real ingestor, worker and
API against the shared Mosquitto, Kafka and InfluxDB, with this test's own tenant, topics,
consumer group, MQTT client id, metrics ports, API port and run folder. A publisher sends a
known set of readings (QoS 1) at a steady pace while the test SIGKILLs the ingestor, waits for
the supervisor to bring it back, then SIGKILLs the worker. Every published reading must then be
in InfluxDB exactly once, with its value; the status file and the metrics must show one
restart of each, the log must say why each stopped; the API must answer while they are down;
and SIGTERM must still stop everything. The timings it prints are what docs/production.md
quotes.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from influxdb_client import InfluxDBClient
from paho.mqtt.enums import CallbackAPIVersion

from api.flux import FluxQuery
from tests.support import (
    MQTT_HOST,
    MQTT_PORT,
    Child,
    free_port,
    http_get,
    scrape,
    unique,
    wait_for,
)
from urbanpulse.settings import Settings
from urbanpulse.supervisor import process_alive
from urbanpulse.supervisor_status import SupervisorStatus, read_status, status_path

SENSORS = [f"sv-{i}" for i in range(5)]
READINGS = 600  # published 10 a second: about a minute, spanning both kills
PACE_S = 0.1
ADMIN_KEY = "supervisor-test-admin-key-0123456789"


@dataclass
class Platform:
    """One ``urbanpulse up`` of this test, and what it needs to look at it."""

    tmp: Path
    tenant: str = field(default_factory=lambda: unique("sv"))
    env: dict[str, str] = field(default_factory=dict)
    child: Child | None = None

    def __post_init__(self) -> None:
        self.ports = {k: free_port() for k in ("api", "ingest", "worker", "supervisor")}
        self.run_dir = self.tmp / "run"
        self.env = os.environ | {
            "URBANPULSE_MQTT__CLIENT_ID": unique("sv-ingest"),
            "URBANPULSE_MQTT__TOPICS": json.dumps([f"urbanpulse/{self.tenant}/+/+"]),
            "URBANPULSE_KAFKA__READINGS_TOPIC": unique("sv-readings"),
            "URBANPULSE_KAFKA__DEADLETTER_TOPIC": unique("sv-deadletter"),
            "URBANPULSE_KAFKA__ALERTS_TOPIC": unique("sv-alerts"),
            "URBANPULSE_KAFKA__OBSERVATIONS_TOPIC": unique("sv-observations"),
            "URBANPULSE_KAFKA__PARTITIONS": "2",
            "URBANPULSE_WORKER__APP_ID": unique("sv-worker"),
            "URBANPULSE_WORKER__DATADIR": str(self.tmp / "worker"),
            "URBANPULSE_WORKER__BATCH_SECONDS": "0.2",
            "URBANPULSE_API__PORT": str(self.ports["api"]),
            # /health shows the supervisor's report only to an admin key
            "URBANPULSE_API__API_KEYS": json.dumps([f"{ADMIN_KEY}:admin"]),
            "URBANPULSE_METRICS__INGEST_PORT": str(self.ports["ingest"]),
            "URBANPULSE_METRICS__WORKER_PORT": str(self.ports["worker"]),
            "URBANPULSE_METRICS__SUPERVISOR_PORT": str(self.ports["supervisor"]),
            "URBANPULSE_SUPERVISOR__RUN_DIR": str(self.run_dir),
            "URBANPULSE_SUPERVISOR__BACKOFF_INITIAL_S": "1",
            # the indicator job would compute every tenant of the shared InfluxDB; this test is
            # about restarts (test_supervisor_units.py checks that `up` runs the job)
            "URBANPULSE_KPIS__ENABLED": "false",
        }
        self.log = self.tmp / "up.log"
        self.influx = InfluxDBClient(url=Settings().influx.url, token="", org="-", timeout=60_000)

    def start(self) -> None:
        self.child = Child.urbanpulse(["up", "--no-simulate"], self.env, self.log)

    def status(self) -> SupervisorStatus | None:
        assert self.child is not None
        self.child.check_alive()
        return read_status(status_path(self.run_dir))

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stored(self) -> dict[tuple[str, datetime], float]:
        """(sensor, observed at) -> value of this tenant's raw temperature points."""
        text = FluxQuery(
            """
from(bucket: "urbanpulse/raw")
  |> range(start: -1d, stop: now())
  |> filter(fn: (r) => r._measurement == "reading" and r.tenant == params.tenant)
  |> filter(fn: (r) => r._field == "value")
""",
            {"tenant": self.tenant},
        ).inline()
        rows = [r.values for t in self.influx.query_api().query(text, org="-") for r in t.records]
        out = {(r["sensor_id"], r["_time"]): r["_value"] for r in rows}
        assert len(out) == len(rows), "a reading is stored more than once"
        return out

    def stop(self) -> int | None:
        """SIGTERM, as Ctrl-C, systemctl stop or make up's cleanup would; the exit code."""
        if self.child is None:
            return None
        process = self.child.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=90)
            except Exception:
                process.kill()
                process.wait()
        self.influx.close()
        return process.returncode


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    running = Platform(tmp_path)
    try:
        yield running
    finally:
        running.stop()


class Publisher:
    """Publishes the known readings one by one (QoS 1, each confirmed by the broker)."""

    def __init__(self, tenant: str, readings: list[tuple[str, datetime, float]]) -> None:
        self.tenant, self.readings = tenant, readings
        self.sent = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("sv-pub"))
        client.connect(MQTT_HOST, MQTT_PORT)
        client.loop_start()
        try:
            for sensor, at, value in self.readings:
                payload = {"time": at.isoformat(), "quantity": "temperature", "value": value}
                topic = f"urbanpulse/{self.tenant}/{sensor}/json"
                info = client.publish(topic, json.dumps(payload | {"unit": "Cel"}), qos=1)
                info.wait_for_publish(timeout=30)
                assert info.is_published(), f"the broker did not confirm {topic}"
                self.sent += 1
                time.sleep(PACE_S)
        except BaseException as err:  # reported by the test thread
            self.error = err
        finally:
            client.disconnect()
            client.loop_stop()


def known_readings(start: datetime, count: int) -> list[tuple[str, datetime, float]]:
    """Distinct (sensor, time) pairs, each value told apart by its index."""
    return [
        (SENSORS[i % len(SENSORS)], start + timedelta(seconds=i), round(10 + i / 100, 2))
        for i in range(count)
    ]


def counter(port: int, name: str) -> float:
    """A counter of a process's /metrics; 0 while the endpoint does not answer."""
    return sum(v for k, v in scrape(port).items() if k.startswith(name))


def kill_and_time(platform: Platform, name: str, working: Any) -> dict[str, float]:
    """SIGKILL one component; time until it runs again and until it works again."""
    before = wait_for(platform.status, 10, "the status file")
    pid = before.units[name].pid
    assert pid is not None and before.units[name].state == "running"
    os.kill(pid, signal.SIGKILL)
    killed, killed_at = time.monotonic(), datetime.now(UTC)
    # The API is its own process: it keeps answering while the component is down.
    query = f"/v1/sensors?tenant={platform.tenant}"
    api_while_down, _ = http_get(f"http://127.0.0.1:{platform.ports['api']}{query}", 10)

    def restarted() -> SupervisorStatus | None:
        now = platform.status()
        unit = now.units[name] if now else None
        fresh = unit and unit.state == "running" and unit.pid not in (None, pid)
        return now if fresh else None

    after = wait_for(restarted, 60, f"the supervisor to restart {name}")
    # From the status file: when the supervisor started the new process (not when we looked).
    running_again = (after.units[name].since - killed_at).total_seconds()
    wait_for(working, 240, f"the restarted {name} to do its work")
    working_again = time.monotonic() - killed
    assert not process_alive(pid)
    unit = after.units[name]
    assert unit.restarts == 1 and unit.last_exit is not None
    assert unit.last_exit.reason == "killed by signal SIGKILL (9)"
    assert unit.last_exit.returncode == -signal.SIGKILL
    assert api_while_down == 200, f"the API answered {api_while_down} while {name} was down"
    return {"running_again_s": running_again, "working_again_s": working_again}


@pytest.mark.timeout(600)
def test_sigkilled_ingest_and_worker_are_restarted_and_nothing_is_lost(
    platform: Platform,
) -> None:
    started = time.monotonic()
    platform.start()
    api = f"http://127.0.0.1:{platform.ports['api']}"
    wait_for(lambda: "UrbanPulse is up" in platform.text(), 120, "the banner")
    assert http_get(f"{api}/health", 10)[0] in (200, 503), "banner before the API answered"
    banner_s = time.monotonic() - started

    # One probe reading through the whole pipeline: ingest subscribed, worker consuming.
    base = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    probe = known_readings(base - timedelta(minutes=5), 1)
    first = Publisher(platform.tenant, probe)
    first.thread.start()
    first.thread.join(60)
    wait_for(lambda: platform.stored(), 180, "the probe reading in InfluxDB")
    pipeline_s = time.monotonic() - started

    readings = known_readings(base, READINGS)
    publisher = Publisher(platform.tenant, readings)
    publisher.thread.start()
    wait_for(lambda: publisher.sent >= READINGS // 6, 60, "the first readings to be sent")

    ingest_port, worker_port = platform.ports["ingest"], platform.ports["worker"]
    ingest = kill_and_time(
        platform, "ingest", lambda: counter(ingest_port, "urbanpulse_ingest_messages_acked") > 0
    )
    sent_at_worker_kill = publisher.sent
    worker = kill_and_time(
        platform, "worker", lambda: counter(worker_port, "urbanpulse_worker_points_written") > 0
    )
    publisher.thread.join(180)
    assert publisher.error is None, publisher.error
    assert publisher.sent == READINGS
    assert sent_at_worker_kill < READINGS, "the worker was killed after the last reading"

    expected = {(s, at): v for s, at, v in probe + readings}

    def all_stored() -> dict[tuple[str, datetime], float] | None:
        found = platform.stored()
        return found if len(found) >= len(expected) else None

    try:
        found = wait_for(all_stored, 300, "every published reading in InfluxDB")
    except AssertionError:
        found = platform.stored()
        missing = sorted(set(expected) - set(found))
        raise AssertionError(
            f"{len(missing)} of {len(expected)} published readings are not stored, e.g. "
            f"{missing[:5]}"
        ) from None
    assert found == expected  # each exactly once (stored() refuses a second copy), same value

    status = platform.status()
    assert status is not None and status.api_ready
    assert {n: u.restarts for n, u in status.units.items()} == {"ingest": 1, "worker": 1, "api": 0}
    assert not status.crash_looping
    metrics = scrape(platform.ports["supervisor"])
    for name, restarts in (("ingest", 1), ("worker", 1), ("api", 0)):
        assert metrics[f"urbanpulse_supervisor_restarts_total{{component={name}}}"] == restarts
        assert metrics[f"urbanpulse_supervisor_component_up{{component={name}}}"] == 1
        assert metrics[f"urbanpulse_supervisor_component_crash_looping{{component={name}}}"] == 0
    health = json.loads(http_get(f"{api}/health", 10, {"X-API-Key": ADMIN_KEY})[1])
    components = health["supervisor"]["components"]
    assert {n: c["restarts"] for n, c in components.items()} == {"ingest": 1, "worker": 1, "api": 0}
    assert components["worker"]["last_exit"] == "killed by signal SIGKILL (9)"
    log = platform.text()
    for name in ("ingest", "worker"):
        assert f"{name} stopped: killed by signal SIGKILL (9) after running" in log
        assert f"restarting {name} (restart 1)" in log

    pids = [u.pid for u in status.units.values() if u.pid is not None]
    assert platform.stop() == 0
    assert not any(process_alive(pid) for pid in pids), "a component outlived the supervisor"
    final = read_status(status_path(platform.run_dir))
    assert final is not None and final.state == "stopped"
    print(
        f"\nbanner after {banner_s:.1f} s, first reading stored after {pipeline_s:.1f} s; "
        f"ingest: running again {ingest['running_again_s']:.1f} s after SIGKILL, acking again "
        f"after {ingest['working_again_s']:.1f} s; worker: running again "
        f"{worker['running_again_s']:.1f} s after SIGKILL, writing again after "
        f"{worker['working_again_s']:.1f} s; {len(expected)} published = {len(found)} stored"
    )
