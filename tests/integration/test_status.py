"""``urbanpulse status`` against the real services, pointed at this test's own names.

Each test has its own tenant, readings and dead-letter topics, worker consumer group, registry
file and supervisor status file (settings as environment variables, as cron would give them),
so the shared services' other data does not enter the verdict, except through the counts of
other tenants, which ``--tenant`` leaves out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from influxdb_client import Point
from influxdb_client.client.write_api import SYNCHRONOUS

from tests.support import REPO, free_port, service_env, unique, wait_for
from urbanpulse.influx import make_client
from urbanpulse.influx_layout import ALERT_MEASUREMENT, READING_MEASUREMENT, STALE_RULE
from urbanpulse.kafka import ensure_topics
from urbanpulse.settings import KafkaSettings, Settings
from urbanpulse.supervisor_status import (
    SupervisorStatus,
    UnitStatus,
    status_path,
    write_status,
)


@dataclass
class Town:
    """One test's tenant and the platform names around it."""

    tenant: str
    kafka: KafkaSettings
    group: str
    env: dict[str, str]
    run_dir: Path

    def status(self, *args: str, **env: str) -> tuple[int, dict[str, Any], float]:
        """Run the command; its exit code, JSON document and how long it took."""
        started = time.monotonic()
        command = ["status", "--json", "--tenant", self.tenant, *args]
        result = subprocess.run(
            [sys.executable, "-m", "urbanpulse.cli", *command],
            cwd=REPO,
            env=self.env | env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        took = time.monotonic() - started
        assert result.returncode in (0, 1), result.stderr
        return result.returncode, json.loads(result.stdout), took

    def produce(self, topic: str, count: int) -> None:
        producer = Producer({"bootstrap.servers": self.kafka.bootstrap})
        for i in range(count):
            producer.produce(topic, key=f"s-{i % 2}".encode(), value=b"{}")
        assert producer.flush(30) == 0

    def supervised(self, **units: UnitStatus) -> None:
        now = datetime.now(UTC)
        status = SupervisorStatus(
            pid=os.getpid(),
            state="running",
            started_at=now - timedelta(hours=1),
            updated_at=now,
            api_ready=True,
            units=units,
        )
        write_status(status_path(self.run_dir), status)


def unit(state: str = "running", **changes: Any) -> UnitStatus:
    fields: dict[str, Any] = {
        "kind": "component",
        "state": state,
        "pid": 4711 if state == "running" else None,
        "since": datetime.now(UTC) - timedelta(minutes=30),
        "restarts": 0,
        "recent_exits": 0,
        "crash_looping": False,
        "next_start_at": None,
    }
    return UnitStatus(**(fields | changes))


@pytest.fixture
def town(tmp_path: Path) -> Iterator[Town]:
    """A tenant with two registered sensors, readings stored a minute ago, a silent sensor,
    two dead letters, and a worker group that read everything and is still connected."""
    tenant = unique("status")
    kafka = Settings().kafka.model_copy(
        update={
            "readings_topic": unique("it-status-readings"),
            "deadletter_topic": unique("it-status-deadletter"),
            "partitions": 2,
        }
    )
    group = unique("it-status-worker")
    registry = tmp_path / "sensors.csv"
    registry.write_text(f"tenant,sensor_id\n{tenant},s-0\n{tenant},s-1\n{tenant},s-2\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("URBANPULSE_")} | service_env()
    env |= {
        "URBANPULSE_KAFKA__READINGS_TOPIC": kafka.readings_topic,
        "URBANPULSE_KAFKA__DEADLETTER_TOPIC": kafka.deadletter_topic,
        "URBANPULSE_WORKER__APP_ID": group,
        "URBANPULSE_STREAMS__REGISTRY_PATH": str(registry),
        "URBANPULSE_SUPERVISOR__RUN_DIR": str(tmp_path / "run"),
    }
    town = Town(tenant=tenant, kafka=kafka, group=group, env=env, run_dir=tmp_path / "run")
    ensure_topics(kafka, [kafka.readings_topic, kafka.deadletter_topic])
    store(tenant)
    town.produce(kafka.readings_topic, 6)
    town.produce(kafka.deadletter_topic, 2)
    worker = Consumer(
        {"bootstrap.servers": kafka.bootstrap, "group.id": group, "auto.offset.reset": "earliest"}
    )
    worker.subscribe([kafka.readings_topic])
    taken: list[object] = []

    def caught_up() -> bool:
        message = worker.poll(0.5)
        if message is not None and message.error() is None:
            taken.append(message)
        return len(taken) == 6

    wait_for(caught_up, 60, "the test's worker group to read its readings")
    worker.commit(asynchronous=False)
    town.supervised(ingest=unit(), worker=unit(), api=unit())
    try:
        yield town
    finally:
        worker.close()


def store(tenant: str, ago: timedelta = timedelta(seconds=30)) -> None:
    """Readings of two sensors half a minute ago; the third sensor silent (a stale alert)."""
    influx = Settings().influx
    now = datetime.now(UTC) - ago + timedelta(seconds=30)
    readings = [
        Point(READING_MEASUREMENT)
        .tag("tenant", tenant)
        .tag("sensor_id", sensor)
        .tag("quantity", "temperature")
        .field("value", 20.5)
        .time(now - timedelta(seconds=30))
        for sensor in ("s-0", "s-1")
    ]
    stale = (
        Point(ALERT_MEASUREMENT)
        .tag("tenant", tenant)
        .tag("sensor_id", "s-2")
        .tag("rule", STALE_RULE)
        .tag("quantity", "all")
        .field("state", "open")
        .field("value", 900.0)
        .time(now - timedelta(hours=3))
    )
    with make_client(influx) as client:
        write = client.write_api(write_options=SYNCHRONOUS)
        write.write(influx.raw_bucket, influx.org, readings)
        write.write(influx.aggregate_bucket, influx.org, stale)


def test_a_working_town_is_reported_healthy(town: Town) -> None:
    code, document, took = town.status()
    assert document["problems"] == [] and document["ok"] is True and code == 0
    facts = document["facts"]
    assert [(s["name"], s["up"]) for s in facts["services"]] == [
        ("mqtt", True),
        ("kafka", True),
        ("influxdb", True),
    ]
    assert facts["supervisor"]["state"] == "running"
    assert [u["name"] for u in facts["supervisor"]["units"]] == ["ingest", "worker", "api"]
    assert facts["lag"] | {"group_state": None} == {
        "group": town.group,
        "topic": town.kafka.readings_topic,
        "topic_exists": True,
        "lag": 0,
        "partitions": {"0": 0, "1": 0},
        "members": 1,
        "group_state": None,
    }
    [activity] = facts["activity"]
    assert activity["tenant"] == town.tenant
    assert (activity["last_minute"], activity["last_hour"]) == (2, 2)
    assert activity["newest_quantity"] == "temperature"
    assert facts["deadletters_last_hour"] == 2
    assert facts["registered"] == {town.tenant: 3}
    [silent] = [a for a in facts["alerts"] if a["open"]]
    assert (silent["sensor_id"], silent["rule"]) == ("s-2", STALE_RULE)
    assert document["notes"] == ["1 sensor(s) silent (open 'stale' alerts)"]
    assert took < 15  # a Python start and every fact, on a loaded shared machine


def test_readings_waiting_for_the_worker_are_reported(town: Town) -> None:
    town.produce(town.kafka.readings_topic, 30)
    code, document, _ = town.status("--max-lag", "10")
    assert code == 1
    assert document["facts"]["lag"]["lag"] == 30
    assert [p["message"] for p in document["problems"]] == [
        f"the stream worker's group {town.group} on {town.kafka.readings_topic} is 30 readings "
        "behind (more than 10)"
    ]
    code, document, _ = town.status("--max-lag", "30")
    assert code == 0, document["problems"]


@pytest.mark.parametrize(
    ("service", "variable", "address"),
    [
        ("influxdb", "URBANPULSE_INFLUX__URL", "http://127.0.0.1:{port}"),
        ("kafka", "URBANPULSE_KAFKA__BOOTSTRAP", "127.0.0.1:{port}"),
        ("mqtt", "URBANPULSE_MQTT__PORT", "{port}"),
    ],
)
def test_a_service_that_answers_nothing_is_reported_within_seconds(
    town: Town, service: str, variable: str, address: str
) -> None:
    nothing = address.format(port=free_port())
    code, document, took = town.status("--timeout", "2", **{variable: nothing})
    assert code == 1
    assert [p["check"] for p in document["problems"]] == [service]
    assert " does not answer: " in document["problems"][0]["message"]
    facts = document["facts"]
    assert (facts["activity"] is None) == (service == "influxdb")
    assert (facts["lag"] is None) == (service == "kafka")
    assert took < 15


def test_a_crash_looping_worker_and_a_quiet_town_are_reported(town: Town) -> None:
    looping = unit(
        "backing-off",
        restarts=6,
        recent_exits=5,
        crash_looping=True,
        next_start_at=datetime.now(UTC) + timedelta(seconds=60),
    )
    town.supervised(ingest=unit(), worker=looping, api=unit())
    code, document, _ = town.status("--max-quiet-minutes", "0.1")
    assert code == 1
    messages = [p["message"] for p in document["problems"]]
    assert messages[0] == "worker is crash-looping (6 restarts; last exit: unknown)"
    assert messages[1].startswith(f"no reading stored for tenant {town.tenant} in the last 0.1 min")
    assert len(messages) == 2


def test_a_tenant_quiet_for_hours_is_reported_with_its_last_reading(town: Town) -> None:
    """Its newest reading is older than the recent hour: found over the look-back."""
    quiet = unique("status-quiet")
    store(quiet, ago=timedelta(hours=3))
    town.tenant = quiet
    code, document, _ = town.status()
    assert code == 1
    [activity] = document["facts"]["activity"]
    newest = datetime.fromisoformat(activity["newest"])
    assert (
        timedelta(hours=2, minutes=59) < datetime.now(UTC) - newest < timedelta(hours=3, minutes=5)
    )
    [problem] = document["problems"]
    assert problem["message"].startswith(
        f"no reading stored for tenant {quiet} in the last 10 minutes (newest: "
        f"{newest.strftime('%Y-%m-%d %H:%M:%S')} UTC)"
    )
    # Looking back one hour only, it is still wrong, with no newest reading to show.
    code, document, _ = town.status("--lookback-hours", "1")
    assert code == 1
    [problem] = document["problems"]
    assert problem["message"].startswith(f"no reading stored for tenant {quiet} in the last 10 ")
    assert "(newest: none" in problem["message"]
