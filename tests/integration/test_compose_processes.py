"""The Compose file's UrbanPulse services, started as local processes against the local services.

No Docker engine runs here, so instead of containers this test starts exactly what
``deploy/compose/compose.yaml`` would run in them: for each UrbanPulse service (``ingest-1``,
``ingest-2``, ``worker`` times its ``deploy.replicas``, ``api``, and ``simulator`` of the
``simulator`` profile) the image's entrypoint (``urbanpulse``, deploy/docker/Dockerfile) with the
service's ``command``, and the environment Compose would give the container: the image's
``ENV``, then the ``env_file`` (``components.env``, here ``components.env.example`` as shipped),
then the service's ``environment``, with ``${VAR:-default}`` resolved from ``.env.example`` (what
Compose reads itself) as Compose does.

Overridden, because it cannot work outside Compose, and nothing else:

* addresses of Compose services: ``mosquitto:1883``, ``kafka:9092``, ``http://influxdb:8086``
  become the local services on 127.0.0.1; the InfluxDB settings become those of the local
  InfluxDB 1.8 (token empty, org ``-``, buckets ``urbanpulse/raw`` / ``urbanpulse/agg``,
  ``FLUX_PARAMS=inline``: 1.8 ignores Flux ``extern`` params);
* one network namespace for all processes instead of one per container: each ingestor and
  worker gets its own metrics port, the API a free port on 127.0.0.1 (Compose: 0.0.0.0:8000,
  published), each worker its own state folder (the image's ``/var/lib/urbanpulse/worker`` is
  per container), each process its own working directory;
* isolation from the other tests on the shared services: unique topics, consumer group (the
  worker's app id), MQTT client ids (``urbanpulse-ingest-1`` + a suffix), shared-subscription
  group (set like an operator would, through ``URBANPULSE_MQTT__SHARED_GROUP`` in .env),
  simulator tenant (``SIMULATOR_TENANT``), and the ingestors' topic filters narrowed to that
  tenant;
* what Compose does around the processes is not exercised: health checks, ``depends_on``,
  restarts, resource limits, volumes, and the one-shot services that make the broker's
  accounts and the InfluxDB tokens;
* secrets as files: each ``URBANPULSE_*_FILE`` a service reads points at a tmp file instead of
  ``/run/secrets/...`` (the MQTT password: sent to the anonymous local broker and ignored; the
  InfluxDB token: empty, as the local 1.8 wants it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from confluent_kafka.admin import AdminClient
from dotenv import dotenv_values
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families

from tests.support import (
    INFLUX_URL,
    KAFKA_BOOTSTRAP,
    MQTT_HOST,
    MQTT_PORT,
    REPO,
    unique,
    wait_for,
)

COMPOSE_DIR = REPO / "deploy" / "compose"
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
ENTRYPOINT = Path(sys.executable).parent / "urbanpulse"  # the console script, as in the image
APP_SERVICES = ("ingest-1", "ingest-2", "worker", "api", "simulator")
VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
STOP_GRACE_S = 30.0  # compose.yaml: stop_grace_period of ingest and worker


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Resolve ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``, ``$$``."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        unset = name not in env or (op.startswith(":") and env[name] == "")
        if unset and op.endswith("-"):
            return arg
        if unset and op.endswith("?"):
            raise KeyError(f"compose needs {name}: {arg}")
        return env.get(name, "")

    return VARIABLE.sub(one, value)


def image_env() -> dict[str, str]:
    """The ``ENV`` of the runtime stage of the Dockerfile (KEY=VALUE pairs, continued lines)."""
    runtime = DOCKERFILE.read_text().split(" AS runtime", 1)[1].replace("\\\n", " ")
    pairs: dict[str, str] = {}
    for line in runtime.splitlines():
        if line.startswith("ENV "):
            pairs |= dict(re.findall(r"(\w+)=(\S+)", line))
    return pairs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    """One process Compose would run: its name, argv and environment."""

    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None


@dataclass
class Stack:
    """The resolved Compose services for one test, with its unique names."""

    tenant: str = field(default_factory=lambda: unique("cp"))
    suffix: str = field(default_factory=lambda: unique("cp")[3:])
    services: list[Service] = field(default_factory=list)

    def compose_variables(self) -> dict[str, str]:
        """What an operator would put in .env: .env.example plus this test's own names."""
        env = {k: v or "" for k, v in dotenv_values(COMPOSE_DIR / ".env.example").items()}
        return env | {
            "SIMULATOR_TENANT": self.tenant,
            "URBANPULSE_MQTT__SHARED_GROUP": f"cp-{self.suffix}",
        }

    def local(self, name: str, n: int, tmp: Path) -> dict[str, str]:
        """The overrides of the module docstring, for one process."""
        env = {
            "URBANPULSE_MQTT__HOST": MQTT_HOST,
            "URBANPULSE_MQTT__PORT": str(MQTT_PORT),
            "URBANPULSE_KAFKA__BOOTSTRAP": KAFKA_BOOTSTRAP,
            "URBANPULSE_INFLUX__URL": INFLUX_URL,
            "URBANPULSE_INFLUX__TOKEN": "",
            "URBANPULSE_INFLUX__ORG": "-",
            "URBANPULSE_INFLUX__RAW_BUCKET": "urbanpulse/raw",
            "URBANPULSE_INFLUX__AGGREGATE_BUCKET": "urbanpulse/agg",
            "URBANPULSE_INFLUX__FLUX_PARAMS": "inline",
            "URBANPULSE_METRICS__INGEST_PORT": str(free_port()),
            "URBANPULSE_METRICS__WORKER_PORT": str(free_port()),
            "URBANPULSE_API__HOST": "127.0.0.1",
            "URBANPULSE_API__PORT": str(free_port()),
            "URBANPULSE_WORKER__DATADIR": str(tmp / f"{name}-{n}" / "worker"),
            "URBANPULSE_KAFKA__READINGS_TOPIC": f"cp-readings-{self.suffix}",
            "URBANPULSE_KAFKA__DEADLETTER_TOPIC": f"cp-deadletter-{self.suffix}",
            "URBANPULSE_KAFKA__ALERTS_TOPIC": f"cp-alerts-{self.suffix}",
            "URBANPULSE_KAFKA__OBSERVATIONS_TOPIC": f"cp-observations-{self.suffix}",
            "URBANPULSE_WORKER__APP_ID": f"cp-worker-{self.suffix}",
            "URBANPULSE_MQTT__TOPICS": json.dumps([f"urbanpulse/{self.tenant}/+/+"]),
        }
        return env

    def resolve(self, tmp: Path, simulator: bool = True) -> None:
        """Read compose.yaml and build each UrbanPulse process as Compose would."""
        variables = self.compose_variables()
        compose = interpolate(yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text()), variables)
        env_file = {
            k: v or "" for k, v in dotenv_values(COMPOSE_DIR / "components.env.example").items()
        }
        secrets = tmp / "secrets"
        secrets.mkdir(parents=True, exist_ok=True)
        files = {
            "URBANPULSE_MQTT__PASSWORD_FILE": "compose-test",
            "URBANPULSE_INFLUX__TOKEN_FILE": "",
        }
        for name, value in files.items():
            (secrets / name).write_text(value)
        for name in APP_SERVICES:
            spec = compose["services"][name]
            if spec.get("profiles") and not simulator:
                continue
            # what components.env.example stands in for
            assert spec["env_file"][0]["path"] == "components.env"
            replicas = int(spec.get("deploy", {}).get("replicas", 1))
            for n in range(replicas):
                env = os.environ | image_env() | env_file | spec.get("environment", {})
                env |= self.local(name, n, tmp)
                env |= {k: str(secrets / k) for k in files if k in env}
                if "URBANPULSE_MQTT__CLIENT_ID" in spec.get("environment", {}):
                    env["URBANPULSE_MQTT__CLIENT_ID"] += f"-{self.suffix}"
                argv = [str(ENTRYPOINT), *map(str, spec["command"])]
                self.services.append(Service(f"{name}#{n}", argv, env))

    def start(self, tmp: Path) -> None:
        for service in self.services:
            workdir = tmp / service.name.replace("#", "-")
            workdir.mkdir(parents=True, exist_ok=True)
            service.log = workdir / "process.log"
            with service.log.open("ab") as out:
                service.process = subprocess.Popen(
                    service.argv, cwd=workdir, env=service.env, stdout=out, stderr=out
                )

    def named(self, prefix: str) -> list[Service]:
        return [s for s in self.services if s.name.startswith(prefix)]

    def check_alive(self) -> None:
        for service in self.services:
            assert service.process is not None and service.log is not None
            if service.process.poll() is not None:
                tail = service.log.read_text(errors="replace")[-3000:]
                raise AssertionError(
                    f"{service.name} ({' '.join(service.argv[1:])}) exited with "
                    f"{service.process.returncode}:\n{tail}"
                )

    def stop(self) -> dict[str, int | None]:
        """SIGTERM everything (as ``docker compose stop``), wait the grace period, then kill."""
        for service in reversed(self.services):
            if service.process is not None and service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        deadline = time.monotonic() + STOP_GRACE_S
        for service in self.services:
            if service.process is None:
                continue
            try:
                codes[service.name] = service.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()
                codes[service.name] = None  # did not stop in the grace period
        return codes


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def counter(port: int, name: str) -> float | None:
    """A counter of a process's /metrics (None while the endpoint is not up)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        if family.name == name:
            return sum(s.value for s in family.samples if s.name.endswith("_total"))
    return None


def group_members(group: str) -> int:
    admin = AdminClient({"bootstrap.servers": KAFKA_BOOTSTRAP})
    futures = admin.describe_consumer_groups([group], request_timeout=10)
    try:
        return len(futures[group].result(timeout=15).members)
    except Exception:  # the group does not exist yet
        return 0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    running = Stack()
    running.resolve(tmp_path)
    running.start(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def test_the_resolved_services_are_the_compose_ones(tmp_path: Path) -> None:
    stack = Stack()
    stack.resolve(tmp_path)
    names = [s.name for s in stack.services]
    assert names == ["ingest-1#0", "ingest-2#0", "worker#0", "worker#1", "api#0", "simulator#0"]
    ingest = stack.named("ingest-1")[0]
    assert ingest.argv[1:] == ["ingest"]
    assert ingest.env["URBANPULSE_MQTT__SHARED_GROUP"] == f"cp-{stack.suffix}"
    assert ingest.env["URBANPULSE_MQTT__CLIENT_ID"] == f"urbanpulse-ingest-1-{stack.suffix}"
    assert ingest.env["URBANPULSE_INFLUX__ORG"] == "-"  # overridden: the local 1.8
    assert ingest.env["URBANPULSE_MQTT__USERNAME"] == "urbanpulse-ingest-1"  # compose.yaml's
    assert Path(ingest.env["URBANPULSE_MQTT__PASSWORD_FILE"]).read_text() == "compose-test"
    for name in ("api", "worker"):
        assert "URBANPULSE_INFLUX__TOKEN_FILE" in stack.named(name)[0].env
        assert "URBANPULSE_MQTT__PASSWORD_FILE" not in stack.named(name)[0].env
    simulator = stack.named("simulator")[0]
    assert simulator.argv[1:] == ["simulate", "--scenario", "town", "--tenant", stack.tenant]


@pytest.mark.timeout(420)
def test_the_compose_processes_carry_readings_from_mqtt_to_the_api(stack: Stack) -> None:
    api_port = int(stack.named("api")[0].env["URBANPULSE_API__PORT"])
    base = f"http://127.0.0.1:{api_port}"
    ingest_ports = [int(s.env["URBANPULSE_METRICS__INGEST_PORT"]) for s in stack.named("ingest")]
    group = stack.named("worker")[0].env["URBANPULSE_WORKER__APP_ID"]

    def healthy() -> bool:
        stack.check_alive()
        try:
            return bool(http_json(f"{base}/health")["status"] == "ok")
        except OSError:
            return False

    wait_for(healthy, 120, "the API's /health to say ok")
    wait_for(
        lambda: stack.check_alive() or group_members(group) == 2,
        180,
        "both workers to join their consumer group",
    )

    # A reading of our own, as a sensor would send it (mosquitto_pub -q 1 ...).
    observed = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0)
    payload = {"time": observed.isoformat(), "quantity": "temperature", "value": 21.5}
    payload |= {"unit": "Cel", "id": "compose-probe"}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("cp-pub"))
    client.connect(MQTT_HOST, MQTT_PORT)
    client.loop_start()
    try:
        info = client.publish(f"urbanpulse/{stack.tenant}/probe-1/json", json.dumps(payload), qos=1)
        info.wait_for_publish(timeout=30)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()

    query = urllib.parse.urlencode({"tenant": stack.tenant})

    def probe_stored() -> list[dict[str, Any]] | None:
        stack.check_alive()
        body = http_json(f"{base}/v1/sensors/probe-1/observations?{query}")
        return body["data"] or None  # type: ignore[no-any-return]

    [row] = wait_for(probe_stored, 120, "the published reading in the API")
    assert (row["quantity"], row["value"], row["unit"]) == ("temperature", 21.5, "Cel")
    assert datetime.fromisoformat(row["time"].replace("Z", "+00:00")) == observed

    # The simulator of the Compose profile publishes the town: its sensors appear in /v1/latest.
    def simulated() -> int | None:
        stack.check_alive()
        features = http_json(f"{base}/v1/latest?{query}")["features"]
        sensors = {f["properties"]["sensor_id"] for f in features} - {"probe-1"}
        return len(sensors) or None

    assert wait_for(simulated, 120, "simulated sensors in /v1/latest") >= 1

    # Both ingestors of the shared subscription take part. The simulator's opening burst can
    # land before the second ingestor has subscribed, so wait for the steady publishing after it
    # (the town's noise sensors report every minute).
    def acked() -> list[float | None]:
        return [counter(p, "urbanpulse_ingest_messages_acked") for p in ingest_ports]

    def both_acked() -> bool:
        stack.check_alive()
        return all(a and a > 0 for a in acked())

    try:
        wait_for(both_acked, 150, "both ingestors of the shared subscription to ack messages")
    except AssertionError as timeout:
        raise AssertionError(f"{timeout}; messages acked per ingestor: {acked()}") from None

    # Stopped as `docker compose stop` does: SIGTERM, then the grace period. uvicorn shuts down
    # gracefully and then re-raises the signal, so the API's clean exit is -SIGTERM (Docker: 143).
    codes = stack.stop()
    clean = {name: (0, -signal.SIGTERM) if name.startswith("api") else (0,) for name in codes}
    assert all(codes[n] in clean[n] for n in codes), f"exit codes after SIGTERM: {codes}"
