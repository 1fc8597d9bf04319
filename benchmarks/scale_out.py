"""Scale-out run: N ingestors on one MQTT shared subscription, W workers in one consumer group.

Starts ``--ingestors`` ``urbanpulse ingest`` processes (one ``$share`` group, own client ids and
metrics ports) and ``--workers`` ``urbanpulse worker`` processes (one consumer group, own state
folders and metrics ports) on a fresh readings topic with ``--partitions`` partitions, all names
unique to the run. Then publishes ``--readings`` readings of ``--sensors`` sensors over MQTT
(QoS 1, ``--per-message`` readings a message, every reading a distinct point), waits until the
workers caught up, and prints:

* readings sent; distinct points in InfluxDB; loss = sent - stored;
* per ingestor: messages received and acked, readings written to Kafka (its ``/metrics``);
* Kafka: readings on the topic per partition (more than sent = duplicates from redelivery);
* per worker: readings taken, by outcome (its ``/metrics``, ``MetricsSettings.worker_port``;
  without it: the messages of the partitions the worker was assigned);
* the time from the first publish to the last point stored.

Needs the local services (``make services-start``); they are shared, so the run uses its own
tenant, topics, groups and client ids and stops only the processes it started.

    .venv/bin/python -m benchmarks.scale_out --readings 20000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from api.flux import params_record
from simulators.publisher import connect, publish
from urbanpulse.influx import make_client
from urbanpulse.settings import Settings

log = logging.getLogger("scale_out")
QUANTITY = ("temperature", "Cel")


@dataclass(frozen=True)
class BenchMessage:
    """One MQTT message of the run: topic, bytes and how many readings it holds."""

    topic: str
    payload: bytes
    readings: tuple[object, ...]


@dataclass
class Process:
    """A started ``urbanpulse`` component and the port of its /metrics."""

    name: str
    popen: subprocess.Popen[bytes]
    metrics_port: int
    log: Path


@dataclass
class Report:
    """The figures of one run."""

    readings_sent: int = 0
    messages_sent: int = 0
    publish_seconds: float = 0.0
    stored_points: int = 0
    end_to_end_seconds: float = 0.0
    ingestors: dict[str, dict[str, float]] = field(default_factory=dict)
    workers: dict[str, dict[str, float]] = field(default_factory=dict)
    kafka_per_partition: dict[int, int] = field(default_factory=dict)
    caught_up: bool = False

    @property
    def loss(self) -> int:
        """Readings sent that are not in InfluxDB."""
        return self.readings_sent - self.stored_points

    @property
    def kafka_duplicates(self) -> int:
        """Readings on the topic beyond those sent (redelivered by MQTT, written twice)."""
        return sum(self.kafka_per_partition.values()) - self.readings_sent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def messages(
    tenant: str, sensors: int, readings: int, per_message: int
) -> Iterator[tuple[datetime, BenchMessage]]:
    """``readings`` distinct readings, round-robin over the sensors, one minute apart each."""
    per_sensor = -(-readings // sensors)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=per_sensor + 1)
    pending: dict[int, list[dict[str, object]]] = {}
    for i in range(readings):
        sensor, step = i % sensors, i // sensors
        at = start + timedelta(minutes=step)
        reading = {"time": at.isoformat(), "quantity": QUANTITY[0], "value": round(i * 0.001, 3)}
        pending.setdefault(sensor, []).append(reading | {"unit": QUANTITY[1], "id": f"r{i}"})
        if len(pending[sensor]) == per_message:
            yield at, _message(tenant, sensor, pending.pop(sensor))
    for sensor, rest in pending.items():  # readings not a multiple of sensors x per_message
        yield start, _message(tenant, sensor, rest)


def _message(tenant: str, sensor: int, readings: list[dict[str, object]]) -> BenchMessage:
    body = readings[0] if len(readings) == 1 else {"readings": readings}
    topic = f"urbanpulse/{tenant}/s-{sensor:05d}/json"
    return BenchMessage(topic, json.dumps(body).encode(), tuple(readings))


def scrape(port: int) -> dict[str, float]:
    """A process's counters: name{label=value} → value (empty while /metrics is down)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                out[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return out


class Run:
    """One run's names, processes and views of Kafka and InfluxDB."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        suffix = uuid.uuid4().hex[:8]
        self.tenant = f"scale-{suffix}"
        self.topic = f"scale-readings-{suffix}"
        self.group = f"scale-worker-{suffix}"
        self.settings = Settings()
        self.base_env = os.environ | {
            "URBANPULSE_MQTT__TOPICS": json.dumps([f"urbanpulse/{self.tenant}/+/json"]),
            "URBANPULSE_MQTT__SHARED_GROUP": f"scale-{suffix}",
            "URBANPULSE_KAFKA__READINGS_TOPIC": self.topic,
            "URBANPULSE_KAFKA__DEADLETTER_TOPIC": f"scale-deadletter-{suffix}",
            "URBANPULSE_KAFKA__ALERTS_TOPIC": f"scale-alerts-{suffix}",
            "URBANPULSE_KAFKA__OBSERVATIONS_TOPIC": f"scale-observations-{suffix}",
            "URBANPULSE_KAFKA__PARTITIONS": str(args.partitions),
            "URBANPULSE_WORKER__APP_ID": self.group,
            "URBANPULSE_METRICS__HOST": "127.0.0.1",
        }
        self.ingestors: list[Process] = []
        self.workers: list[Process] = []
        self.bootstrap = self.settings.kafka.bootstrap
        # the earliest observation time of the run (messages() starts per_sensor + 1 min back)
        minutes = -(-args.readings // args.sensors) + 5
        self.since = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes)

    def create_topic(self) -> None:
        """The readings topic with the wanted partitions, before anything writes to it."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        topic = NewTopic(self.topic, num_partitions=self.args.partitions, replication_factor=1)
        admin.create_topics([topic])[self.topic].result(timeout=30)

    def start(self, command: str, n: int) -> Process:
        """Start ``urbanpulse <command>`` number n with its own ids, port and log."""
        port = free_port()
        env = self.base_env | {
            "URBANPULSE_MQTT__CLIENT_ID": f"{self.group}-{command}-{n}",
            "URBANPULSE_METRICS__INGEST_PORT": str(port),
            "URBANPULSE_METRICS__WORKER_PORT": str(port),
            "URBANPULSE_WORKER__DATADIR": str(self.workdir / f"{command}-{n}"),
        }
        path = self.workdir / f"{command}-{n}.log"
        with path.open("ab") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "urbanpulse.cli", command],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return Process(f"{command}-{n}", popen, port, path)

    def check_alive(self) -> None:
        """Fail with the log's tail when a component died."""
        for proc in self.ingestors + self.workers:
            if proc.popen.poll() is not None:
                tail = proc.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{tail}")

    def wait(self, what: str, check: Callable[[], bool], timeout_s: float) -> None:
        """Poll ``check()`` until true, or fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not check():
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
            time.sleep(0.5)
        log.info("ready: %s", what)

    def warm_up(self) -> None:
        """Publish to a warm-up sensor until every ingestor received from the shared group."""
        client = connect(self.settings.mqtt, f"{self.group}-warmup")
        n = 0

        def all_received() -> bool:
            nonlocal n
            client.publish(
                f"urbanpulse/{self.tenant}/warmup/json",
                json.dumps({"quantity": "temperature", "value": 0, "unit": "Cel", "id": f"w{n}"}),
                qos=1,
            )
            n += 1
            got = [
                scrape(p.metrics_port).get("urbanpulse_ingest_messages_received_total", 0)
                for p in self.ingestors
            ]
            return all(g > 0 for g in got)

        try:
            self.wait("every ingestor receives from the shared subscription", all_received, 60)
        finally:
            client.disconnect()
            client.loop_stop()

    def group_ready(self) -> bool:
        """Whether all workers joined the group and own partitions of the readings topic."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        try:
            group = admin.describe_consumer_groups([self.group])[self.group].result(timeout=10)
        except Exception:  # not there yet
            return False
        owners = [
            {tp.partition for tp in m.assignment.topic_partitions if tp.topic == self.topic}
            for m in group.members
        ]
        return len(owners) == len(self.workers) and all(owners)

    def assignment(self) -> dict[str, list[int]]:
        """Partitions of the readings topic per group member (client id = member)."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        group = admin.describe_consumer_groups([self.group])[self.group].result(timeout=10)
        return {
            f"{m.client_id}@{m.host}#{i}": sorted(
                tp.partition for tp in m.assignment.topic_partitions if tp.topic == self.topic
            )
            for i, m in enumerate(group.members)
        }

    def offsets(self) -> tuple[dict[int, int], dict[int, int]]:
        """(end offset, committed offset of the worker group) per partition."""
        consumer = Consumer(
            {"bootstrap.servers": self.bootstrap, "group.id": self.group, "enable.auto.commit": 0}
        )
        try:
            tps = [TopicPartition(self.topic, p) for p in range(self.args.partitions)]
            ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
            committed = {tp.partition: max(tp.offset, 0) for tp in consumer.committed(tps, 10)}
        finally:
            consumer.close()
        return ends, committed

    def caught_up(self) -> bool:
        """Whether the worker group committed everything on the readings topic."""
        ends, committed = self.offsets()
        return ends == committed

    def stored(self) -> int:
        """Distinct raw points of the run's sensors in InfluxDB (points are idempotent)."""
        influx = self.settings.influx
        text = (
            params_record({"tenant": self.tenant})
            + f"""
from(bucket: "{influx.raw_bucket}")
  |> range(start: {self.since.strftime("%Y-%m-%dT%H:%M:%SZ")}, stop: now())
  |> filter(fn: (r) => r._measurement == "reading" and r.tenant == params.tenant)
  |> filter(fn: (r) => r._field == "value" and r.sensor_id != "warmup")
  |> group()
  |> count()
"""
        )
        with make_client(influx, timeout_ms=60_000) as client:
            tables = client.query_api().query(text, org=influx.org)
        return sum(int(r.get_value()) for t in tables for r in t.records)

    def stop(self) -> None:
        """SIGTERM every component, wait, kill what does not stop in 30 s."""
        procs = self.ingestors + self.workers
        for proc in procs:
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in 30 s; killing it", proc.name)
                proc.popen.kill()
                proc.popen.wait()


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """Counters grown since ``before`` (the warm-up is not part of the run)."""
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}


def taken(bench: Run, before: dict[str, dict[str, float]]) -> float | None:
    """Readings the workers took from Kafka since ``before`` (None without worker metrics)."""
    total, seen = 0.0, False
    for proc in bench.workers:
        counters = scrape(proc.metrics_port)
        old = before.get(proc.name, {})
        for key, value in counters.items():
            if key.startswith("urbanpulse_worker_readings_total") and "flagged" not in key:
                total, seen = total + value - old.get(key, 0.0), True
    return total if seen else None


def wait_stored(bench: Run, sent: int, before: dict[str, dict[str, float]]) -> int:
    """Wait until InfluxDB holds every reading (or progress stalls); return the points stored.

    With worker metrics, progress is polled there (cheap) and InfluxDB counted once the workers
    took every reading; without, InfluxDB is counted every few seconds.
    """
    args = bench.args
    deadline, last, last_change = time.monotonic() + args.timeout, -1.0, time.monotonic()
    while time.monotonic() < deadline:
        bench.check_alive()
        progress = taken(bench, before)
        stored: int | None = None
        if progress is None or progress >= sent:
            stored = bench.stored()
        now = float(stored) if stored is not None else float(progress or 0)
        if now != last:
            last, last_change = now, time.monotonic()
            log.info("%s %d of %d", "taken" if stored is None else "stored", now, sent)
        if stored is not None and stored >= sent:
            return stored
        if time.monotonic() - last_change > args.stall:
            log.warning("no progress for %.0f s; giving up waiting", args.stall)
            break
        time.sleep(0.5 if stored is None else 2)
    return bench.stored()


def run(args: argparse.Namespace, workdir: Path) -> Report:
    """Start the components, publish, wait for the workers, and collect the figures."""
    bench = Run(args, workdir)
    log.info(
        "run %s: tenant %s, topic %s (%d partitions), logs in %s",
        bench.group,
        bench.tenant,
        bench.topic,
        args.partitions,
        workdir,
    )
    bench.create_topic()
    report = Report()
    try:
        bench.ingestors = [bench.start("ingest", n) for n in range(args.ingestors)]
        bench.workers = [bench.start("worker", n) for n in range(args.workers)]
        bench.warm_up()
        bench.wait("every worker owns partitions of the readings topic", bench.group_ready, 180)
        assignment = bench.assignment()
        log.info("partitions per worker: %s", assignment)
        bench.wait("the workers took the warm-up readings", lambda: bench.caught_up(), 120)
        warm_ends, _ = bench.offsets()
        before = {p.name: scrape(p.metrics_port) for p in bench.ingestors + bench.workers}
        client = connect(bench.settings.mqtt, f"{bench.group}-publisher")
        started = time.monotonic()
        try:
            summary = publish(
                client,
                messages(bench.tenant, args.sensors, args.readings, args.per_message),
                realtime=False,
            )
        finally:
            client.disconnect()
            client.loop_stop()
        report.readings_sent, report.messages_sent = summary.readings, summary.messages
        report.publish_seconds = summary.seconds
        log.info("published: %s", summary.line())
        report.stored_points = wait_stored(bench, report.readings_sent, before)
        report.end_to_end_seconds = time.monotonic() - started
        time.sleep(3)  # let the ingestors' last acks and the workers' commits land
        ends, _ = bench.offsets()
        report.caught_up = bench.caught_up()
        report.kafka_per_partition = {p: ends[p] - warm_ends.get(p, 0) for p in ends}
        for proc in bench.ingestors:
            report.ingestors[proc.name] = delta(scrape(proc.metrics_port), before[proc.name])
        for proc in bench.workers:
            report.workers[proc.name] = delta(scrape(proc.metrics_port), before[proc.name])
        if not any(report.workers.values()):  # no worker metrics: fall back to partitions
            for member, parts in assignment.items():
                report.workers[member] = {
                    "messages_of_assigned_partitions": sum(
                        report.kafka_per_partition[p] for p in parts
                    ),
                    "partitions": float(len(parts)),
                }
    finally:
        bench.stop()
    return report


def print_report(report: Report, args: argparse.Namespace) -> None:
    """The figures, for people."""
    e2e = report.end_to_end_seconds
    print(
        f"\nscale-out: {args.ingestors} ingestors, {args.workers} workers, "
        f"{args.partitions} partitions, {args.sensors} sensors, {args.per_message} reading(s)/msg"
    )
    print(
        f"readings sent          {report.readings_sent} in {report.messages_sent} messages "
        f"({report.publish_seconds:.1f} s, "
        f"{report.messages_sent / max(report.publish_seconds, 1e-9):.0f} messages/s)"
    )
    print(f"distinct points stored {report.stored_points}  (loss = sent - stored = {report.loss})")
    print(
        f"end to end             {e2e:.1f} s, {report.stored_points / max(e2e, 1e-9):.0f} "
        "readings/s from first publish to last point stored"
    )
    kafka = sum(report.kafka_per_partition.values())
    print(
        f"kafka                  {kafka} readings on the topic "
        f"(duplicates from redelivery: {report.kafka_duplicates}); per partition "
        f"{report.kafka_per_partition}; workers caught up: {report.caught_up}"
    )
    for name, counters in report.ingestors.items():
        picked = {
            k.removeprefix("urbanpulse_ingest_").removesuffix("_total"): v
            for k, v in counters.items()
            if "messages" in k or k.startswith("urbanpulse_ingest_readings")
        }
        print(f"  {name:<10} {picked}")
    for name, counters in report.workers.items():
        picked = {
            k.removeprefix("urbanpulse_worker_"): v
            for k, v in counters.items()
            if "readings" in k or "messages" in k or k == "partitions"
        }
        print(f"  {name:<10} {picked}")
    print("(per-process counts exclude the warm-up messages sent before the run)")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the option help, the module docstring as written."""


def main(argv: list[str] | None = None) -> int:
    """Parse options, run, print; exit 1 when readings were lost."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale_out", description=__doc__, formatter_class=_Formatter
    )
    parser.add_argument("--readings", type=int, default=20_000, help="readings to publish")
    parser.add_argument("--sensors", type=int, default=500, help="distinct sensors (Kafka keys)")
    parser.add_argument("--per-message", type=int, default=1, help="readings per MQTT message")
    parser.add_argument("--ingestors", type=int, default=2, help="ingest processes ($share)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (one group)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the topic (>=2)")
    parser.add_argument("--timeout", type=float, default=600, help="longest wait for storage, s")
    parser.add_argument("--stall", type=float, default=90, help="give up after no progress, s")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--keep-logs", action="store_true", help="keep the components' logs")
    args = parser.parse_args(argv)
    if args.partitions < 2 or min(args.ingestors, args.workers, args.readings) < 1:
        parser.error("--partitions must be >= 2; ingestors, workers and readings >= 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s")
    logging.getLogger("simulators").setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="scale-out-") as tmp:
        workdir = Path(tempfile.mkdtemp(prefix="scale-out-")) if args.keep_logs else Path(tmp)
        report = run(args, workdir)
    print_report(report, args)
    if args.json:
        body = asdict(report) | {"loss": report.loss, "kafka_duplicates": report.kafka_duplicates}
        args.json.write_text(
            json.dumps(
                body | {"options": vars(args) | {"json": str(args.json)}}, indent=2, default=str
            )
        )
    return 1 if report.loss else 0


if __name__ == "__main__":
    sys.exit(main())
