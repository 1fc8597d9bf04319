"""Compose's broker enforces the generated accounts: a real Mosquitto of the test's own.

The broker runs deploy/compose/mosquitto/mosquitto.conf (dynamic security plugin, client id =
user name, size limits) and its accounts come from the very ``urbanpulse credentials`` command
line of compose.yaml's mqtt-credentials service, run for real on a small registry; only the
container paths are replaced by tmp ones. Issue 15: a device could publish as any other,
subscribe to ``#``, join the ingestors' ``$share`` group or take over an ingestor's client id.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.integration.mosquitto_instance import (
    COMPOSE_CONF,
    Broker,
    dynamic_security_plugin,
    running,
)
from tests.integration.mqtt_probe import Probe, connect
from tests.support import REPO
from urbanpulse.mqtt_topics import SUPPORTED_TOPIC_FILTERS

COMPOSE = yaml.safe_load((REPO / "deploy" / "compose" / "compose.yaml").read_text())
GROUP = "ingest"  # compose.yaml's default shared-subscription group
REGISTRY = "tenant,sensor_id\ntown,a\ntown,b\ntown,lpp-1:1\ntown,lpp-1:2\ncity,a\n"
SERVICE_PASSWORD = "service-secret"
GRANTED_QOS_1, NOT_AUTHORIZED, PACKET_TOO_LARGE = 1, 0x87, 0x95
# The broker refuses an oversized packet on its header, while the sender still writes the body:
# the sender may hit the closed socket before it reads the DISCONNECT (test_broker_limits.py).
CONNECTION_LOST = 0x80
ACCEPTED = {0x00, 0x10}  # 0x10: accepted, but nobody subscribes to the topic
INGEST_FILTERS = SUPPORTED_TOPIC_FILTERS  # the ingestor's default subscription


@dataclass(frozen=True, kw_only=True)
class ComposeBroker:
    """The running broker and the passwords of its accounts."""

    broker: Broker
    passwords: dict[str, str]

    def login(self, username: str, client_id: str | None = None) -> Probe:
        """A probe logged in as this account (MQTT 5)."""
        password = self.passwords[username]
        return connect(self.broker.port, username, password, client_id=client_id)


def compose_credentials_command(tmp: Path) -> list[str]:
    """mqtt-credentials' command of compose.yaml, with tmp paths for the container's."""
    command = [str(a) for a in COMPOSE["services"]["mqtt-credentials"]["command"]]
    replaced = []
    for arg in command:
        arg = arg.replace("${URBANPULSE_MQTT__SHARED_GROUP:-ingest}", GROUP)
        arg = arg.replace("${SIMULATOR_TENANT:-demo}", "demo")
        arg = arg.replace("/run/secrets/", f"{tmp}/secrets/")
        arg = arg.replace("/device-secrets/", f"{tmp}/device-secrets/")
        replaced.append(f"{tmp}/accounts" if arg == "/accounts" else arg)
    return [*replaced, "--registry", str(tmp / "registry.csv")]


@pytest.fixture
def compose_broker(tmp_path: Path) -> Iterator[ComposeBroker]:
    (tmp_path / "registry.csv").write_text(REGISTRY)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mqtt_service_password").write_text(SERVICE_PASSWORD)
    (tmp_path / "secrets" / "mqtt_simulator_password").write_text("simulator-secret")
    cli = [sys.executable, "-m", "urbanpulse.cli", *compose_credentials_command(tmp_path)]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    rows = csv.DictReader(io.StringIO((tmp_path / "device-secrets" / "secrets.csv").read_text()))
    passwords = {row["username"]: row["password"] for row in rows}
    passwords |= dict.fromkeys(
        ("urbanpulse-ingest-1", "urbanpulse-ingest-2", "urbanpulse-healthcheck"), SERVICE_PASSWORD
    )
    passwords["urbanpulse-simulator"] = "simulator-secret"
    values = {
        "plugin": dynamic_security_plugin(),
        "plugin_opt_config_file": str(tmp_path / "accounts" / "dynamic-security.json"),
        "log_dest": "stderr",  # unbuffered: the test reads the log while the broker runs
    }
    with running(COMPOSE_CONF, tmp_path, values) as broker:
        yield ComposeBroker(broker=broker, passwords=passwords)


def ingestor(broker: ComposeBroker, name: str = "urbanpulse-ingest-1") -> Probe:
    """An ingest account subscribed as the ingestor does: its filters in the shared group."""
    probe = broker.login(name, client_id=name)
    for topic in INGEST_FILTERS:
        assert probe.subscribe(f"$share/{GROUP}/{topic}") == [GRANTED_QOS_1]
    return probe


def test_a_device_publishes_its_own_readings_and_the_ingestors_get_them(
    compose_broker: ComposeBroker,
) -> None:
    ingest = ingestor(compose_broker)
    device = compose_broker.login("town/a")
    lpp = compose_broker.login("town/lpp-1")  # the channels lpp-1:1, lpp-1:2 share one account
    try:
        assert device.publish("urbanpulse/town/a/json", b'{"v": 1}') in ACCEPTED
        assert lpp.publish("urbanpulse/town/lpp-1/lpp", b"\x01\x67\x00\xe1") in ACCEPTED
        ingest.wait(lambda: len(ingest.messages) >= 2, "both readings at the ingestor")
        assert sorted(ingest.topics()) == ["urbanpulse/town/a/json", "urbanpulse/town/lpp-1/lpp"]
    finally:
        for probe in (ingest, device, lpp):
            probe.close()


def test_a_device_cannot_publish_as_another_device_tenant_or_network_server(
    compose_broker: ComposeBroker,
) -> None:
    ingest = ingestor(compose_broker)
    device = compose_broker.login("town/a")
    try:
        for forged in (
            "urbanpulse/town/b/json",  # another device
            "urbanpulse/city/a/json",  # the same device id in another tenant
            "v3/town-app@ttn/devices/b/up",  # a network server's uplink
            "application/1234/device/0011223344556677/event/up",
        ):
            assert device.publish(forged, b"{}") == NOT_AUTHORIZED, forged
        assert device.publish("urbanpulse/town/a/json", b"control") in ACCEPTED
        ingest.wait(lambda: ingest.messages, "the control reading")
        assert ingest.topics() == ["urbanpulse/town/a/json"]
    finally:
        ingest.close()
        device.close()


def test_a_device_cannot_subscribe_to_anything(compose_broker: ComposeBroker) -> None:
    device = compose_broker.login("town/a")
    try:
        for topic in ("#", "urbanpulse/#", "urbanpulse/town/b/#", "urbanpulse/town/a/#", "$SYS/#"):
            assert device.subscribe(topic) == [NOT_AUTHORIZED], topic
    finally:
        device.close()


def test_a_device_cannot_join_the_ingestors_share_group(compose_broker: ComposeBroker) -> None:
    # With Mosquitto 2.0.11's acl_file the same SUBSCRIBE is granted, and the broker then hands
    # the device its share of the readings, which the file forbids it to receive: they are lost.
    ingest = ingestor(compose_broker)
    thief = compose_broker.login("town/b")
    sender = compose_broker.login("town/a")
    try:
        for topic in INGEST_FILTERS:
            assert thief.subscribe(f"$share/{GROUP}/{topic}") == [NOT_AUTHORIZED]
        for n in range(50):
            assert sender.publish("urbanpulse/town/a/json", str(n).encode()) in ACCEPTED
        ingest.wait(lambda: len(ingest.messages) >= 50, "all 50 readings at the ingestor")
        assert thief.messages == []
    finally:
        for probe in (ingest, thief, sender):
            probe.close()


def test_a_device_cannot_take_over_an_ingestors_client_id(compose_broker: ComposeBroker) -> None:
    ingest = ingestor(compose_broker)
    impostor = compose_broker.login("town/a", client_id="urbanpulse-ingest-1")
    try:
        # The broker named the impostor's connection after its user: the ingestor stays.
        log = compose_broker.broker.log_text()
        assert "as town/a (p5, c1, k60, u'town/a')" in log
        assert "as urbanpulse-ingest-1 (p5, c1, k60, u'town/a')" not in log
        assert impostor.publish("urbanpulse/town/a/json", b"after") in ACCEPTED
        ingest.wait(lambda: ingest.messages, "a reading at the ingestor")
        assert ingest.disconnects == [] and ingest.topics() == ["urbanpulse/town/a/json"]
        # The ingestor's account without its password gets nothing.
        wrong = connect(compose_broker.broker.port, "urbanpulse-ingest-1", "guess", wait=False)
        wrong.wait(lambda: wrong.connacks, "the CONNACK of a wrong password")
        assert wrong.connacks[0] == NOT_AUTHORIZED
        wrong.close()
    finally:
        ingest.close()
        impostor.close()


def test_service_accounts_do_only_their_own_job(compose_broker: ComposeBroker) -> None:
    ingest = compose_broker.login("urbanpulse-ingest-2")
    simulator = compose_broker.login("urbanpulse-simulator")
    try:
        assert ingest.publish("urbanpulse/town/a/json", b"{}") == NOT_AUTHORIZED
        assert ingest.subscribe("#") == [NOT_AUTHORIZED]
        assert simulator.publish("urbanpulse/demo/air-1/json", b"{}") in ACCEPTED
        assert simulator.publish("v3/demo-sensors@ttn/devices/x/up", b"{}") in ACCEPTED
        assert simulator.publish("urbanpulse/town/a/json", b"{}") == NOT_AUTHORIZED
        assert simulator.subscribe("urbanpulse/#") == [NOT_AUTHORIZED]
    finally:
        ingest.close()
        simulator.close()


def test_compose_health_check_of_the_broker_passes(
    compose_broker: ComposeBroker, tmp_path: Path
) -> None:
    mosquitto = COMPOSE["services"]["mosquitto"]
    command = mosquitto["healthcheck"]["test"][1].replace("$$", "$")  # as Compose passes it
    command = command.replace("-p 1883", f"-p {compose_broker.broker.port}")
    command = command.replace("/run/secrets/", f"{tmp_path}/secrets/")
    env = os.environ | mosquitto["environment"]
    done = subprocess.run(["sh", "-c", command], env=env, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().isdigit() or done.stdout.strip().endswith(b"seconds")


def test_an_oversized_message_of_a_device_is_refused(compose_broker: ComposeBroker) -> None:
    device = compose_broker.login("town/a")
    try:
        info = device.client.publish("urbanpulse/town/a/json", b"A" * 800_000, qos=1)
        device.wait(lambda: device.disconnects, "the broker to close the connection")
        device.client.loop_stop()  # paho would reconnect and send the message again
        assert device.disconnects[0] in (PACKET_TOO_LARGE, CONNECTION_LOST)
        assert info.mid not in device.pubacks
    finally:
        device.close()
