"""Registry administration end to end: the admin API writes, the worker's reload applies it.

The first test checks the seam (``RegistryFile``, what the worker reloads) directly; the second
runs a real ``urbanpulse worker`` on Kafka and InfluxDB with ``unknown_sensors=deadletter``: a
reading of an unregistered sensor is dead-lettered, the sensor is added through
``POST /v1/admin/sensors``, and its next reading is stored, enriched with the position given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from fastapi.testclient import TestClient
from influxdb_client import InfluxDBClient

from api.app import create_app
from api.flux import params_record
from tests.support import KAFKA_BOOTSTRAP, Child, consume_until, unique, wait_for
from urbanpulse.model import Reading
from urbanpulse.registry import RegistryFile
from urbanpulse.settings import ApiSettings, Settings, StreamsSettings

BOOTSTRAP = KAFKA_BOOTSTRAP
KEY = "integration-admin-key-0123456789"
AUTH = {"X-API-Key": KEY}


def admin_client(registry: Path) -> TestClient:
    settings = Settings(
        api=ApiSettings(api_keys=[f"{KEY}:admin"]),
        streams=StreamsSettings(registry_path=str(registry)),
    )
    return TestClient(create_app(settings))


def test_registry_reload_sees_added_and_retired_sensors(tmp_path: Path) -> None:
    registry = tmp_path / "sensors.csv"
    registry.write_text("tenant,sensor_id,district\ndemo,air-001,centrum\n")
    worker_view = RegistryFile(str(registry), check_s=0)  # what the worker reloads
    assert set(worker_view.current()) == {("demo", "air-001")}
    with admin_client(registry) as client:
        body = {"tenant": "demo", "sensor_id": "air-009", "district": "oost", "interval_s": 60}
        assert client.post("/v1/admin/sensors", json=body, headers=AUTH).status_code == 201
        assert worker_view.current()[("demo", "air-009")].district == "oost"
        retired = client.post("/v1/admin/sensors/demo/air-001/retire", headers=AUTH)
        assert retired.status_code == 200
    current = worker_view.current()
    assert current[("demo", "air-001")].status == "retired"
    assert current[("demo", "air-009")].interval_s == 60


class WorkerRun:
    """A real worker with its own topics, consumer group, tenant and registry file."""

    def __init__(self, tmp: Path) -> None:
        self.tenant = unique("adm")
        self.topic = unique("it-adm-readings")
        self.deadletter = unique("it-adm-deadletter")
        self.registry = tmp / "sensors.yaml"
        self.registry.write_text(f"sensors:\n  - tenant: {self.tenant}\n    sensor_id: known\n")
        admin = AdminClient({"bootstrap.servers": BOOTSTRAP})  # kept alive until created
        created = admin.create_topics(
            [NewTopic(self.topic, num_partitions=1, replication_factor=1)]
        )
        created[self.topic].result(timeout=30)
        env = os.environ | {
            "URBANPULSE_KAFKA__READINGS_TOPIC": self.topic,
            "URBANPULSE_KAFKA__DEADLETTER_TOPIC": self.deadletter,
            "URBANPULSE_KAFKA__ALERTS_TOPIC": unique("it-adm-alerts"),
            "URBANPULSE_KAFKA__PARTITIONS": "1",
            "URBANPULSE_WORKER__APP_ID": unique("it-adm-worker"),
            "URBANPULSE_WORKER__DATADIR": str(tmp / "worker"),
            "URBANPULSE_WORKER__BATCH_SECONDS": "0.2",
            "URBANPULSE_STREAMS__REGISTRY_PATH": str(self.registry),
            "URBANPULSE_STREAMS__REGISTRY_RELOAD_S": "1",
            "URBANPULSE_STREAMS__UNKNOWN_SENSORS": "deadletter",
            "URBANPULSE_METRICS__WORKER_PORT": "0",
        }
        self.worker = Child.urbanpulse(["worker"], env, tmp / "worker.log")
        # A long timeout: InfluxDB answers slowly when the machine runs many tests at once.
        self.influx = InfluxDBClient(url=Settings().influx.url, token="", org="-", timeout=60_000)

    def produce(self, sensor_id: str, minute: int) -> None:
        at = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=minute)
        reading = Reading(
            tenant=self.tenant,
            sensor_id=sensor_id,
            quantity="temperature",
            value=10.0 + minute,
            unit="Cel",
            observed_at=at,
            received_at=at,
            source_format="json",
            message_id=f"{sensor_id}-{minute}",
        )
        producer = Producer({"bootstrap.servers": BOOTSTRAP})
        producer.produce(self.topic, key=reading.key, value=reading.to_bytes())
        assert producer.flush(30) == 0

    def stored(self, sensor_id: str) -> list[dict[str, Any]]:
        self.worker.check_alive()
        text = (
            params_record({"tenant": self.tenant, "sensor": sensor_id})
            + """
from(bucket: "urbanpulse/raw")
  |> range(start: -1h, stop: now())
  |> filter(fn: (r) => r._measurement == "reading" and r.tenant == params.tenant
      and r.sensor_id == params.sensor)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
"""
        )
        tables = self.influx.query_api().query(text, org="-")
        return [record.values for table in tables for record in table.records]

    def close(self) -> None:
        self.worker.stop()
        self.influx.close()


@pytest.fixture
def run(tmp_path: Path) -> Iterator[WorkerRun]:
    running = WorkerRun(tmp_path)
    try:
        yield running
    finally:
        running.close()


def test_worker_applies_a_sensor_added_through_the_admin_api(run: WorkerRun) -> None:
    run.produce("known", 3)
    wait_for(lambda: run.stored("known"), 120, "the worker to store the registered sensor")

    run.produce("newcomer", 2)
    letters = consume_until(
        BOOTSTRAP, run.deadletter, lambda values: len(values) >= 1, timeout_s=60
    )
    assert [json.loads(v)["reason"] for v in letters] == ["unregistered_sensor"]
    assert run.stored("newcomer") == []

    with admin_client(run.registry) as client:
        body = {"tenant": run.tenant, "sensor_id": "newcomer", "lat": 52.37, "lon": 4.89}
        assert client.post("/v1/admin/sensors", json=body, headers=AUTH).status_code == 201

    def newcomer_stored() -> list[dict[str, Any]]:
        run.produce("newcomer", 1)  # the same reading again until a reload lets it through
        return run.stored("newcomer")

    rows = wait_for(newcomer_stored, 60, "a reading of the newly registered sensor stored")
    assert (rows[0]["lat"], rows[0]["lon"]) == (52.37, 4.89)  # enriched from the registry
    assert "unregistered" not in (rows[0].get("quality_flags") or "")
