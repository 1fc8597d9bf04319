"""The stream worker as a real process on real Kafka and InfluxDB: replays, SIGKILL, two workers.

Each test has its own tenant, topics and consumer group. The input is a deterministic set of
readings (6 sensors x 2 quantities x 90 minutes, sensors in 2 districts of a registry file);
the expected raw points and aggregates are computed offline with ``streams.windows.offline``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from influxdb_client import InfluxDBClient

from api.flux import FluxQuery
from streams.quality import epoch_us
from streams.windows import offline
from tests.support import KAFKA_BOOTSTRAP, REPO, unique, wait_for
from urbanpulse.model import Reading
from urbanpulse.settings import Settings

BOOTSTRAP = KAFKA_BOOTSTRAP
# The stall watchdog's limit where a Supervisor restarts stopped workers (300 s in production).
STALL_RESTART_S = 30
SENSORS = [f"s-{i}" for i in range(6)]
DISTRICT = {s: ("north" if i % 2 else "south") for i, s in enumerate(SENSORS)}
QUANTITIES = (("temperature", "Cel"), ("pm10", "ug/m3"))
MINUTES = 90
WINDOWS = {"1m": 60_000_000, "15m": 900_000_000, "1h": 3_600_000_000}


def make_input(tenant: str) -> list[Reading]:
    rng = random.Random(7)
    base = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    out = []
    for minute in range(MINUTES):
        for sensor in SENSORS:
            for quantity, unit in QUANTITIES:
                at = base + timedelta(minutes=minute, seconds=7)
                out.append(
                    Reading(
                        tenant=tenant,
                        sensor_id=sensor,
                        quantity=quantity,
                        value=round(rng.uniform(5, 25), 2),
                        unit=unit,
                        observed_at=at,
                        received_at=at + timedelta(seconds=1),
                        source_format="json",
                        message_id=f"{sensor}-{quantity}-{minute}",
                    )
                )
    return out


def expected_aggregates(readings: list[Reading]) -> dict[tuple[str, ...], tuple[Any, ...]]:
    """(scope, subject, quantity, window, start) → (count, mean, min, max, last), offline."""
    series: dict[tuple[str, str, str], list[tuple[str, int, float]]] = {}
    for r in readings:
        t = epoch_us(r.observed_at)
        series.setdefault(("sensor", r.sensor_id, r.quantity), []).append((str(t), t, r.value))
        series.setdefault(("district", DISTRICT[r.sensor_id], r.quantity), []).append(
            (f"{r.sensor_id}@{t}", t, r.value)
        )
    out = {}
    for (scope, subject, quantity), points in series.items():
        for window, size in WINDOWS.items():
            for start, agg in offline(points, size).items():
                out[(scope, subject, quantity, window, str(start))] = (
                    agg.count,
                    round(agg.mean, 9),
                    agg.min,
                    agg.max,
                    agg.last,
                )
    return out


class Worker:
    """``urbanpulse worker`` as a child process with its own log."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.log_start = log.stat().st_size if log.exists() else 0  # a restart appends
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "urbanpulse.cli", "worker"],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def own_log(self) -> str:
        """This process's part of the log (a restarted worker appends to the same file)."""
        with self.log.open("rb") as log:
            log.seek(self.log_start)
            return log.read().decode(errors="replace")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"worker exited with {self.process.returncode}:\n{tail}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


class Scenario:
    """One test's tenant, topics, registry, worker environment and InfluxDB view."""

    def __init__(self, tmp: Path) -> None:
        self.tenant = unique("st")
        self.tmp = tmp
        self.topic = unique("it-st-readings")
        self.app_id = unique("it-st-worker")
        registry = tmp / "sensors.csv"
        registry.write_text(
            "tenant,sensor_id,district\n"
            + "".join(f"{self.tenant},{s},{DISTRICT[s]}\n" for s in SENSORS)
        )
        self.env = os.environ | {
            "URBANPULSE_KAFKA__READINGS_TOPIC": self.topic,
            "URBANPULSE_KAFKA__DEADLETTER_TOPIC": unique("it-st-deadletter"),
            "URBANPULSE_KAFKA__ALERTS_TOPIC": unique("it-st-alerts"),
            "URBANPULSE_KAFKA__PARTITIONS": "2",
            "URBANPULSE_WORKER__APP_ID": self.app_id,
            "URBANPULSE_WORKER__BATCH_SIZE": "25",
            "URBANPULSE_WORKER__BATCH_SECONDS": "0.2",
            "URBANPULSE_STREAMS__REGISTRY_PATH": str(registry),
            "URBANPULSE_METRICS__WORKER_PORT": "0",  # several workers on one host
        }
        admin = AdminClient({"bootstrap.servers": BOOTSTRAP})  # kept alive until created
        created = admin.create_topics(
            [NewTopic(self.topic, num_partitions=2, replication_factor=1)]
        )
        created[self.topic].result(timeout=30)
        self.workers: list[Worker] = []
        self.supervised = False  # a Supervisor restarts workers that exit
        # A loaded machine (the whole suite, workers writing) can take InfluxDB past the
        # client's default 10 s on the aggregate queries.
        self.influx = InfluxDBClient(url=Settings().influx.url, token="", org="-", timeout=180_000)

    def start_worker(self, n: int = 0) -> Worker:
        worker = Worker(
            self.env | {"URBANPULSE_WORKER__DATADIR": str(self.tmp / f"w{n}")},
            self.tmp / f"worker-{n}.log",
        )
        self.workers.append(worker)
        return worker

    def produce(self, readings: list[Reading]) -> None:
        producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True})
        for r in readings:
            producer.produce(self.topic, key=r.key, value=r.to_bytes())
            producer.poll(0)
        assert producer.flush(30) == 0

    def caught_up(self) -> bool:
        """Whether the worker group committed every offset of its input topics."""
        for worker in self.workers:
            if worker.process.returncode is None and not self.supervised:
                worker.check_alive()
        consumer = Consumer(
            {"bootstrap.servers": BOOTSTRAP, "group.id": self.app_id, "enable.auto.commit": False}
        )
        try:
            # the readings topic and the worker's internal district topic
            district = f"{self.app_id}-district-readings"
            tps = [TopicPartition(t, p) for t in (self.topic, district) for p in (0, 1)]
            committed = consumer.committed(tps, timeout=10)
            ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
        except KafkaException:  # the worker has not created its internal topic yet
            return False
        finally:
            consumer.close()
        # an empty partition has no committed offset (negative) and end 0
        return all(max(c.offset, 0) == end for c, end in zip(committed, ends, strict=True))

    def query(self, bucket: str, measurement: str) -> list[dict[str, Any]]:
        # Literals, not a params record: InfluxDB 1.8 then reads this tenant's series only
        # (api.flux.FluxQuery.inline), not every series of the day in the shared bucket.
        text = FluxQuery(
            f"""
from(bucket: "{bucket}")
  |> range(start: -1d, stop: now())
  |> filter(fn: (r) => r._measurement == params.m and r.tenant == params.tenant)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
""",
            {"tenant": self.tenant, "m": measurement},
        ).inline()
        tables = self.influx.query_api().query(text, org="-")
        return [record.values for table in tables for record in table.records]

    def raw(self) -> dict[tuple[str, str, datetime], tuple[float, str]]:
        rows = self.query("urbanpulse/raw", "reading")
        out = {
            # a reading without flags has no quality_flags field (streams.points)
            (r["sensor_id"], r["quantity"], r["_time"]): (r["value"], r.get("quality_flags"))
            for r in rows
        }
        assert len(out) == len(rows), "a raw point is present more than once"
        return out

    def aggregates(self) -> dict[tuple[str, ...], tuple[Any, ...]]:
        out = {}
        for r in self.query("urbanpulse/agg", "aggregate"):
            subject = r["sensor_id"] if r["scope"] == "sensor" else r["district"]
            start = str(epoch_us(r["_time"]))
            out[(r["scope"], subject, r["quantity"], r["window"], start)] = (
                r["count"],
                round(r["mean"], 9),
                r["min"],
                r["max"],
                r["last"],
            )
        return out

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.influx.close()


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    running = Scenario(tmp_path)
    try:
        yield running
    finally:
        running.close()


class Supervisor:
    """Restarts workers the stall watchdog stopped, as Compose or Kubernetes would.

    The watchdog runs at :data:`STALL_RESTART_S` instead of production's 300 s. Any other
    exit of a worker fails the test.
    """

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        scenario.supervised = True
        scenario.env["URBANPULSE_WORKER__STALL_RESTART_S"] = str(STALL_RESTART_S)
        self.workers: dict[int, Worker] = {}
        self.restarts = 0

    def start(self, n: int) -> Worker:
        """Start worker ``n`` under supervision."""
        self.workers[n] = self.scenario.start_worker(n)
        return self.workers[n]

    def tend(self) -> None:
        """Restart workers stopped by the watchdog; fail on any other exit."""
        for n, worker in list(self.workers.items()):
            if worker.process.poll() is None:
                continue
            if "PartitionStalled" not in worker.own_log():
                worker.check_alive()  # raises, with the log's tail
            self.restarts += 1
            print(f"\nthe watchdog stopped worker {n}; restart {self.restarts}")
            self.start(n)

    def finished(self, readings: list[Reading]) -> bool:
        """Tend the workers; then whether they stored the whole input."""
        self.tend()
        return complete(self.scenario, readings)


def report(name: str, scenario: Scenario, readings: list[Reading]) -> tuple[int, int, int, int]:
    raw, aggs = scenario.raw(), scenario.aggregates()
    expected = expected_aggregates(readings)
    figures = (len(readings), len(raw), len(expected), len(aggs))
    print(
        f"\n{name}: raw points expected {figures[0]}, found {figures[1]}; "
        f"aggregates expected {figures[2]}, found {figures[3]}"
    )
    return figures


def assert_complete(scenario: Scenario, readings: list[Reading]) -> None:
    raw = scenario.raw()
    want_raw = {(r.sensor_id, r.quantity, r.observed_at): r.value for r in readings}
    assert {k: v for k, (v, _) in raw.items()} == want_raw
    expected = expected_aggregates(readings)
    found = scenario.aggregates()
    assert found == expected, differences(found, expected)


def differences(found: dict[Any, Any], expected: dict[Any, Any]) -> str:
    """What a failed comparison of aggregates should say: which windows, and how."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    wrong = sorted(
        (k, found[k], expected[k]) for k in found.keys() & expected if found[k] != expected[k]
    )
    return (
        f"missing {missing[:10]}; unexpected {extra[:10]}; differing (found, expected) {wrong[:10]}"
    )


def complete(scenario: Scenario, readings: list[Reading]) -> bool:
    return scenario.caught_up() and len(scenario.raw()) >= len(readings)


@pytest.mark.timeout(600)
def test_replaying_the_same_input_twice_leaves_influxdb_unchanged(scenario: Scenario) -> None:
    readings = make_input(scenario.tenant)
    scenario.start_worker()
    scenario.produce(readings)
    wait_for(lambda: complete(scenario, readings), 240, "the worker to store the input")
    assert_complete(scenario, readings)
    before = (scenario.raw(), scenario.aggregates())
    scenario.produce(readings)  # the same input again, as a replay would deliver it
    wait_for(scenario.caught_up, 240, "the worker to consume the replay")
    report("replay", scenario, readings)
    assert (scenario.raw(), scenario.aggregates()) == before


@pytest.mark.timeout(600)
def test_sigkill_mid_stream_then_restart_stores_everything_once(scenario: Scenario) -> None:
    readings = make_input(scenario.tenant)
    worker = scenario.start_worker()
    total, half = len(readings), len(readings) // 2
    # The second half is produced only after the kill, so the kill is always mid-stream,
    # however fast the worker is on this machine.
    scenario.produce(readings[:half])
    stored = wait_for(
        lambda: (worker.check_alive(), len(scenario.raw()))[1] > total // 4,
        240,
        "a quarter of the input stored",
    )
    worker.kill()
    partial = len(scenario.raw())
    print(f"\nSIGKILL after {partial} of {total} raw points")
    assert stored and partial < total
    scenario.produce(readings[half:])
    # A worker can stop fetching a partition after a restart (docs/streams.md, "Offsets after
    # a rebalance"); the stall watchdog then stops it and the supervisor starts it again.
    supervisor = Supervisor(scenario)
    supervisor.start(1)
    wait_for(lambda: supervisor.finished(readings), 300, "the restarted worker to finish")
    report("sigkill", scenario, readings)
    print(f"watchdog restarts: {supervisor.restarts}")
    assert_complete(scenario, readings)


@pytest.mark.timeout(600)
def test_two_workers_on_two_partitions_give_the_same_result_as_one(scenario: Scenario) -> None:
    readings = make_input(scenario.tenant)
    workers = [scenario.start_worker(0), scenario.start_worker(1)]
    # Both join the group before any input: this test compares the steady state of two
    # workers with one; a worker joining mid-stream is test_streams_handover.py.
    wait_for(
        lambda: all("Ready" in w.log.read_text(errors="replace") for w in workers),
        120,
        "both workers to be ready",
    )
    scenario.produce(readings)
    wait_for(lambda: complete(scenario, readings), 300, "two workers to store the input")
    report("two workers", scenario, readings)
    assert_complete(scenario, readings)
