"""A benchmark's own UrbanPulse processes on the shared local services, and their clean-up.

:class:`Stack` starts ``urbanpulse ingest`` and ``urbanpulse worker`` processes with names
unique to the run (tenant, topics, MQTT shared group and client ids, consumer group, state
folders, metrics ports), so a run can go on beside other work on the same Mosquitto, Kafka
and InfluxDB; it waits until they are ready, and afterwards stops only its own processes and
removes what the run left behind (topics, consumer group, MQTT sessions, InfluxDB series).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client.parser import text_string_to_metric_families

from urbanpulse.mqtt import make_client
from urbanpulse.settings import Settings

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scrape(port: int) -> dict[str, float]:
    """A process's counters: ``name{label=value}`` → value (empty while /metrics is down)."""
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


def service_ports(settings: Settings) -> dict[str, int]:
    """The port of Mosquitto, Kafka and InfluxDB, as the settings name them."""
    return {
        "mosquitto": settings.mqtt.port,
        "kafka": int(settings.kafka.bootstrap.split(",")[0].rsplit(":", 1)[1]),
        "influxdb": int(settings.influx.url.rsplit(":", 1)[1].split("/")[0]),
    }


def counter_sum(counters: dict[str, float], prefix: str) -> float:
    """The sum of the counters whose key starts with ``prefix`` (all label values)."""
    return sum(v for k, v in counters.items() if k.startswith(prefix))


@dataclass
class Process:
    """A started ``urbanpulse`` component and the port of its /metrics."""

    name: str
    popen: subprocess.Popen[bytes]
    metrics_port: int
    log: Path
    client_id: str


class Stack:
    """One run's names and processes, and views of Kafka."""

    def __init__(
        self, workdir: Path, partitions: int, prefix: str = "tp", *, shared_group: bool = True
    ) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.name = f"{prefix}-{suffix}"
        self.workdir = workdir
        self.partitions = partitions
        self.tenant = self.name
        self.topic = f"{self.name}-readings"
        self.group = f"{self.name}-worker"
        self.settings = Settings()
        self.bootstrap = self.settings.kafka.bootstrap
        self.base_env = os.environ | {
            "URBANPULSE_MQTT__TOPICS": json.dumps([f"urbanpulse/{self.tenant}/+/json"]),
            # Several ingestors split the load on a shared subscription; one may read plainly.
            "URBANPULSE_MQTT__SHARED_GROUP": self.name if shared_group else "",
            "URBANPULSE_KAFKA__READINGS_TOPIC": self.topic,
            "URBANPULSE_KAFKA__DEADLETTER_TOPIC": f"{self.name}-deadletter",
            "URBANPULSE_KAFKA__ALERTS_TOPIC": f"{self.name}-alerts",
            "URBANPULSE_KAFKA__OBSERVATIONS_TOPIC": f"{self.name}-observations",
            "URBANPULSE_KAFKA__PARTITIONS": str(partitions),
            "URBANPULSE_WORKER__APP_ID": self.group,
            "URBANPULSE_METRICS__HOST": "127.0.0.1",
        }
        self.ingestors: list[Process] = []
        self.workers: list[Process] = []
        self.apis: list[Process] = []

    @property
    def processes(self) -> list[Process]:
        """Every component started, ingestors first."""
        return self.ingestors + self.workers + self.apis

    def create_topic(self) -> None:
        """The readings topic with the wanted partitions, before anything writes to it."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        topic = NewTopic(self.topic, num_partitions=self.partitions, replication_factor=1)
        admin.create_topics([topic])[self.topic].result(timeout=30)

    def start(self, command: str, n: int, extra_env: dict[str, str] | None = None) -> Process:
        """Start ``urbanpulse <command>`` number n with its own ids, port and log."""
        port = free_port()
        client_id = f"{self.name}-{command}-{n}"
        env = self.base_env | {
            "URBANPULSE_MQTT__CLIENT_ID": client_id,
            "URBANPULSE_METRICS__INGEST_PORT": str(port),
            "URBANPULSE_METRICS__WORKER_PORT": str(port),
            "URBANPULSE_WORKER__DATADIR": str(self.workdir / f"{command}-{n}"),
        }
        path = self.workdir / f"{command}-{n}.log"
        with path.open("ab") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "urbanpulse.cli", command],
                env=env | (extra_env or {}),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return Process(f"{command}-{n}", popen, port, path, client_id)

    def check_alive(self) -> None:
        """Fail with the log's tail when a component died."""
        for proc in self.processes:
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

    def ingestors_received(self) -> bool:
        """Whether every ingestor took a message from its subscription (shared or plain)."""
        return all(
            scrape(p.metrics_port).get("urbanpulse_ingest_messages_received_total", 0) > 0
            for p in self.ingestors
        )

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

    def offsets(self) -> tuple[dict[int, int], dict[int, int]]:
        """(end offset, committed offset of the worker group) per partition."""
        consumer = Consumer(
            {"bootstrap.servers": self.bootstrap, "group.id": self.group, "enable.auto.commit": 0}
        )
        try:
            tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
            ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
            committed = {tp.partition: max(tp.offset, 0) for tp in consumer.committed(tps, 10)}
        finally:
            consumer.close()
        return ends, committed

    def caught_up(self) -> bool:
        """Whether the worker group committed everything on the readings topic."""
        ends, committed = self.offsets()
        return ends == committed

    def handled(self, proc: Process) -> float | None:
        """Readings a component handled so far, from its /metrics (None without them).

        An ingestor: readings written to Kafka. A worker: readings taken from Kafka (stored,
        dead-lettered or dropped as duplicates).
        """
        counters = scrape(proc.metrics_port)
        if not counters:
            return None
        if proc in self.ingestors:
            return counters.get("urbanpulse_ingest_readings_total", 0.0)
        return counter_sum(counters, "urbanpulse_worker_readings_total{outcome=") - sum(
            v for k, v in counters.items() if "outcome=flagged" in k
        )

    def worker_taken(self) -> float | None:
        """Readings the workers took from Kafka so far (None while a worker has no metrics)."""
        taken = [self.handled(proc) for proc in self.workers]
        return None if None in taken else sum(t or 0.0 for t in taken)

    def stop(self) -> None:
        """SIGTERM every component, wait, kill what does not stop in 30 s."""
        for proc in self.processes:
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in 30 s; killing it", proc.name)
                proc.popen.kill()
                proc.popen.wait()

    def finish(self, *, keep: bool, drop_tenant: Callable[[str], None]) -> None:
        """Stop the components; unless ``keep``, remove what the run left (series included)."""
        self.stop()
        if keep:
            log.info("kept: tenant, topics and group %s*, logs in %s", self.name, self.workdir)
            return
        self.clean_up()
        try:
            drop_tenant(self.tenant)
        except Exception as err:  # a leftover tenant harms nobody
            log.warning("InfluxDB series of %s not dropped: %s", self.tenant, err)

    def clean_up(self) -> None:
        """Remove the run's topics, consumer group and MQTT sessions (after :meth:`stop`)."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        try:
            mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(self.name)]
            for future in admin.delete_topics(mine, operation_timeout=30).values():
                future.result()
            admin.delete_consumer_groups([self.group])[self.group].result()
        except Exception as err:  # leftovers are harmless: names are unique to the run
            log.warning("Kafka clean-up incomplete: %s", err)
        for proc in self.ingestors:
            end_session(self.settings, proc.client_id)


def end_session(settings: Settings, client_id: str) -> None:
    """Discard the persistent MQTT session an ingestor left on the broker."""
    client = make_client(settings.mqtt, client_id)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    try:
        client.connect(settings.mqtt.host, settings.mqtt.port, clean_start=True, properties=props)
        client.loop_start()
        time.sleep(0.5)
        client.disconnect()
        client.loop_stop()
    except OSError as err:
        log.warning("MQTT session %s not removed: %s", client_id, err)
