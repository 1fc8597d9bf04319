"""Helpers for tests that use the real local services (started by ``make test``).

Where the services are comes from ONE place: ``Settings()``, i.e. the ``URBANPULSE_*``
environment. ``make test`` (deploy/local/test.sh) exports the addresses of the test suite's own
services (``deploy/local/services.sh --test env``: other ports than a ``make up`` platform, data
under .local/test-BASE/), and processes the tests start inherit them. Without that environment the
standard ports apply. Tests use the constants below, never a port number of their own.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from confluent_kafka import Consumer
from prometheus_client.parser import text_string_to_metric_families

from urbanpulse.model import Reading
from urbanpulse.settings import Settings
from urbanpulse.wire import decode_record

REPO = Path(__file__).resolve().parent.parent
SERVICES = REPO / "deploy" / "local" / "services.sh"
T = TypeVar("T")

_SERVICE_SETTINGS = Settings()
MQTT_HOST: str = _SERVICE_SETTINGS.mqtt.host
MQTT_PORT: int = _SERVICE_SETTINGS.mqtt.port
KAFKA_BOOTSTRAP: str = _SERVICE_SETTINGS.kafka.bootstrap
KAFKA_HOST, _, _kafka_port = KAFKA_BOOTSTRAP.split(",")[0].strip().rpartition(":")
KAFKA_PORT: int = int(_kafka_port)
INFLUX_URL: str = _SERVICE_SETTINGS.influx.url
_influx = urlsplit(INFLUX_URL)
INFLUX_HOST: str = _influx.hostname or "127.0.0.1"
INFLUX_PORT: int = _influx.port or (443 if _influx.scheme == "https" else 80)


def unique(prefix: str) -> str:
    """A name no other test uses: each test gets its own topics, tenant and client ids."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def service_env() -> dict[str, str]:
    """The service addresses as ``URBANPULSE_*`` variables, for an environment built from scratch.

    A child started with only some of ``os.environ`` (as cron would start it) needs these, or
    it takes the default addresses: the standard ports, not the test services.
    """
    return {
        "URBANPULSE_MQTT__HOST": MQTT_HOST,
        "URBANPULSE_MQTT__PORT": str(MQTT_PORT),
        "URBANPULSE_KAFKA__BOOTSTRAP": KAFKA_BOOTSTRAP,
        "URBANPULSE_INFLUX__URL": INFLUX_URL,
    }


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts connections on host:port."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def require_services() -> None:
    """Fail (not skip) with a clear message when a local service is not reachable."""
    for name, host, port in (
        ("Mosquitto", MQTT_HOST, MQTT_PORT),
        ("Kafka", KAFKA_HOST, KAFKA_PORT),
        ("InfluxDB", INFLUX_HOST, INFLUX_PORT),
    ):
        if not port_open(port, host):
            raise AssertionError(
                f"{name} is not running on {host}:{port}; run the tests with `make test`, or "
                "`deploy/local/test.sh tests/...` for some of them: both start the test "
                "services and point the tests at them"
            )


def isolated_settings(tenant: str) -> Settings:
    """Settings whose topics, client ids and subscriptions belong to one test only.

    Built on ``Settings()`` so the service addresses stay those of the environment: a section
    passed as a model (``Settings(kafka=KafkaSettings(...))``) would take the defaults instead.
    """
    base = Settings()
    mqtt = base.mqtt.model_copy(
        update={"client_id": unique("it-ingest"), "topics": [f"urbanpulse/{tenant}/+/+"]}
    )
    kafka = base.kafka.model_copy(
        update={
            "readings_topic": unique("it-readings"),
            "deadletter_topic": unique("it-deadletter"),
            "alerts_topic": unique("it-alerts"),
            "partitions": 2,
        }
    )
    return base.model_copy(update={"mqtt": mqtt, "kafka": kafka})


def consume(bootstrap: str, topic: str, count: int, timeout_s: float) -> list[bytes]:
    """Read ``count`` values from the start of ``topic``, or what arrived by the timeout."""
    return consume_until(bootstrap, topic, lambda values: len(values) >= count, timeout_s)


def consume_until(
    bootstrap: str, topic: str, done: Callable[[list[bytes]], bool], timeout_s: float
) -> list[bytes]:
    """Read ``topic`` from the start until ``done(values)`` holds or the timeout passes."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("it-reader"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not done(values) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                values.append(msg.value())
    finally:
        consumer.close()
    return values


def readings_of(values: list[bytes]) -> list[Reading]:
    """The readings held by records of the readings topic (batches), in order; none refused."""
    out: list[Reading] = []
    for value in values:
        record = decode_record(value)
        assert not record.refused, record.refused
        out += record.readings
    return out


def consume_readings(
    bootstrap: str,
    topic: str,
    done: Callable[[list[Reading]], bool] | int,
    timeout_s: float,
) -> list[Reading]:
    """Read the readings of ``topic``'s records from the start until ``done(readings)`` holds
    (or that many readings arrived), or the timeout passes."""
    check = done if callable(done) else (lambda got: len(got) >= done)
    readings: list[Reading] = []
    seen = 0

    def arrived(values: list[bytes]) -> bool:
        nonlocal seen  # decode each record once, not all of them at every poll
        readings.extend(readings_of(values[seen:]))
        seen = len(values)
        return check(readings)

    consume_until(bootstrap, topic, arrived, timeout_s)
    return readings


def wait_for(check: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.5)


def services(*args: str) -> None:
    """Run deploy/local/services.sh (to stop and restart a service in a test).

    It inherits ``URBANPULSE_SERVICES_INSTANCE`` from the environment: under ``make test``
    it acts on the test services only, never on a platform running beside them.
    """
    subprocess.run([str(SERVICES), *args], check=True, timeout=180)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(
    url: str, timeout_s: float = 30, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """Status and body of a GET; status 0 when nothing answers."""
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except OSError:
        return 0, b""


def scrape(port: int) -> dict[str, float]:
    """A Prometheus exposition on 127.0.0.1:port as ``name{k=v,...}`` → value; {} if none."""
    status, body = http_get(f"http://127.0.0.1:{port}/metrics", 5)
    if status != 200:
        return {}
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


class Child:
    """A child process with its output in a log file, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    @classmethod
    def urbanpulse(cls, command: list[str], env: dict[str, str], log: Path) -> Child:
        """``urbanpulse <command>`` run with this interpreter, as the console script would."""
        return cls(command[0], [sys.executable, "-m", "urbanpulse.cli", *command], env, log)

    def check_alive(self) -> None:
        """Fail with the log's tail when the process has exited."""
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{tail}")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM and wait; SIGKILL after ``timeout_s``."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
