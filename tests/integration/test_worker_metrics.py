"""The stream worker's /metrics and /health, scraped from a real worker on Kafka and InfluxDB.

One worker process with its own topics and consumer group, JSON logs on: the write-latency
histogram counts real InfluxDB writes, the readings counter counts what was stored, the lag
gauge covers the worker's partitions and falls to 0 once everything is committed, and every
line the worker logged is a JSON object.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.support import KAFKA_BOOTSTRAP, Child, free_port, http_get, scrape, unique, wait_for
from urbanpulse.model import Reading

BOOTSTRAP = KAFKA_BOOTSTRAP
READINGS = 40


def get(port: int, path: str) -> tuple[int, bytes]:
    return http_get(f"http://127.0.0.1:{port}{path}", 5)


class RunningWorker:
    """``urbanpulse worker`` on its own topics, metrics port and log file."""

    def __init__(self, tmp: Path) -> None:
        self.tenant = unique("wm")
        self.topic = unique("it-wm-readings")
        self.port = free_port()
        self.log = tmp / "worker.log"
        admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
        admin.create_topics([NewTopic(self.topic, num_partitions=2, replication_factor=1)])[
            self.topic
        ].result(timeout=30)
        env = os.environ | {
            "URBANPULSE_KAFKA__READINGS_TOPIC": self.topic,
            "URBANPULSE_KAFKA__DEADLETTER_TOPIC": unique("it-wm-deadletter"),
            "URBANPULSE_KAFKA__ALERTS_TOPIC": unique("it-wm-alerts"),
            "URBANPULSE_KAFKA__OBSERVATIONS_TOPIC": unique("it-wm-observations"),
            "URBANPULSE_KAFKA__PARTITIONS": "2",
            "URBANPULSE_WORKER__APP_ID": unique("it-wm-worker"),
            "URBANPULSE_WORKER__BATCH_SIZE": "10",
            "URBANPULSE_WORKER__BATCH_SECONDS": "0.2",
            "URBANPULSE_WORKER__DATADIR": str(tmp / "state"),
            "URBANPULSE_METRICS__HOST": "127.0.0.1",
            "URBANPULSE_METRICS__WORKER_PORT": str(self.port),
            "URBANPULSE_LOG_FORMAT": "json",
            "URBANPULSE_LOG_LEVEL": "INFO",
        }
        self.child = Child.urbanpulse(["worker"], env, self.log)

    def alive(self) -> None:
        self.child.check_alive()

    def produce(self, readings: list[Reading]) -> None:
        producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True})
        for r in readings:
            producer.produce(self.topic, key=r.key, value=r.to_bytes())
        assert producer.flush(30) == 0

    def stop(self) -> None:
        self.child.stop()


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[RunningWorker]:
    running = RunningWorker(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def readings(tenant: str) -> list[Reading]:
    base = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)
    return [
        Reading(
            tenant=tenant,
            sensor_id=f"s-{i % 4}",
            quantity="temperature",
            value=10 + i % 7,
            unit="Cel",
            observed_at=base + timedelta(minutes=i),
            received_at=base + timedelta(minutes=i, seconds=1),
            source_format="json",
            message_id=f"m-{i}",
        )
        for i in range(READINGS)
    ]


def test_worker_metrics_count_writes_and_lag_falls_to_zero(worker: RunningWorker) -> None:
    def healthy() -> bool:
        worker.alive()
        status, body = get(worker.port, "/health")
        return status == 200 and json.loads(body)["status"] == "ok"

    wait_for(healthy, 120, "the worker's /health to answer ok")
    worker.produce(readings(worker.tenant))

    stored = "urbanpulse_worker_readings_total{outcome=stored}"

    def all_stored() -> dict[str, float] | None:
        worker.alive()
        samples = scrape(worker.port)
        return samples if samples.get(stored) == READINGS else None

    samples = wait_for(all_stored, 120, f"{READINGS} readings stored")
    assert samples["urbanpulse_worker_influx_write_seconds_count{kind=raw}"] > 0
    assert samples["urbanpulse_worker_influx_write_seconds_sum{kind=raw}"] > 0
    assert samples["urbanpulse_worker_points_written_total{kind=raw}"] == READINGS
    aggregate_writes = "urbanpulse_worker_influx_write_seconds_count{kind=aggregate}"

    def aggregates_written() -> dict[str, float] | None:  # by the next snapshot (every 5 s)
        worker.alive()
        samples = scrape(worker.port)
        snapshots = samples.get("urbanpulse_worker_snapshot_seconds_count{table=sensor}", 0)
        return samples if samples.get(aggregate_writes, 0) > 0 and snapshots > 0 else None

    wait_for(aggregates_written, 60, "the window aggregates to be written by a snapshot")

    lag_keys = {
        f"urbanpulse_worker_consumer_lag{{partition={p},topic={worker.topic}}}" for p in (0, 1)
    }

    def caught_up() -> dict[str, float] | None:
        worker.alive()
        samples = scrape(worker.port)
        lags = {k: samples[k] for k in lag_keys if k in samples}
        return samples if len(lags) == 2 and not any(lags.values()) else None

    samples = wait_for(caught_up, 60, "the consumer lag of both partitions to reach 0")
    print(
        f"\nworker metrics: {samples[stored]:.0f} stored, raw writes "
        f"{samples['urbanpulse_worker_influx_write_seconds_count{kind=raw}']:.0f} taking "
        f"{samples['urbanpulse_worker_influx_write_seconds_sum{kind=raw}']:.3f} s in all"
    )

    worker.stop()
    lines = worker.log.read_text().splitlines()
    assert lines, "the worker logged nothing"
    records = [json.loads(line) for line in lines]  # every line: one JSON object
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert {r["component"] for r in records} == {"worker"}
