"""What `urbanpulse service install` writes, run for real: the Kafka unit's storage formatting,
and the single VM's broker with the accounts made from a registry.

The installation is rendered with ``--prefix`` (nothing on the machine changes). The broker is a
Mosquitto of the test's own on a free port (tests/integration/mosquitto_instance.py), started
from the rendered ``mosquitto.conf`` with only the port, its data folder and the installation's
``/etc/urbanpulse`` (read below the prefix) replaced: the plugin is the one the installation
found on this machine. Issue 15: with the ``acl_file`` this broker had, a device could
subscribe to ``#``, join the ingestor's ``$share`` group (and take its readings) or take over
its client id.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.mosquitto_instance import Broker, running
from tests.integration.mqtt_probe import Probe, connect
from tests.unit.deploy.single_vm import (
    conf_dir,
    install_with_registry,
    parse_unit,
    unit_path,
)
from urbanpulse.credentials import DEFAULT_SHARED_GROUP, INGEST_USER, parse_secrets
from urbanpulse.mqtt_topics import SUPPORTED_TOPIC_FILTERS

GRANTED_QOS_1, NOT_AUTHORIZED = 1, 0x87
ACCEPTED = {0x00, 0x10}  # 0x10: accepted, but nobody subscribes to the topic
GROUP = DEFAULT_SHARED_GROUP


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_with_registry(tmp_path_factory.mktemp("vm") / "root")


@dataclass(frozen=True, kw_only=True)
class VmBroker:
    """The single VM's broker, running, and the passwords the installation gave out."""

    broker: Broker
    passwords: dict[str, str]

    def login(self, username: str, client_id: str | None = None) -> Probe:
        """A probe logged in as this account (MQTT 5)."""
        return connect(self.broker.port, username, self.passwords[username], client_id=client_id)


@pytest.fixture
def vm_broker(installed: Path, tmp_path: Path) -> Iterator[VmBroker]:
    conf = conf_dir(installed)
    rendered = (conf / "mosquitto.conf").read_text()
    local = tmp_path / "vm-mosquitto.conf"
    local.write_text(rendered.replace(" /etc/urbanpulse/", f" {conf}/"))
    passwords = parse_secrets((conf / "mqtt" / "secrets.csv").read_text())
    with running(local, tmp_path, {"log_dest": "stderr"}) as broker:
        yield VmBroker(broker=broker, passwords=passwords)


def ingestor(broker: VmBroker) -> Probe:
    """The platform's account, with its client id, subscribed in the shared group."""
    probe = broker.login(INGEST_USER, client_id=INGEST_USER)
    for topic in SUPPORTED_TOPIC_FILTERS:
        assert probe.subscribe(f"$share/{GROUP}/{topic}") == [GRANTED_QOS_1]
    return probe


def test_a_device_publishes_its_own_readings_and_the_platform_gets_them(
    vm_broker: VmBroker,
) -> None:
    ingest = ingestor(vm_broker)
    device = vm_broker.login("town/a")
    lpp = vm_broker.login("town/lpp-1")  # the channels lpp-1:1, lpp-1:2 share one account
    try:
        assert device.publish("urbanpulse/town/a/json", b'{"v": 1}') in ACCEPTED
        assert lpp.publish("urbanpulse/town/lpp-1/lpp", b"\x01\x67\x00\xe1") in ACCEPTED
        assert device.publish("urbanpulse/town/b/json", b"{}") == NOT_AUTHORIZED  # not its own
        ingest.wait(lambda: len(ingest.messages) >= 2, "both readings at the platform")
        assert sorted(ingest.topics()) == ["urbanpulse/town/a/json", "urbanpulse/town/lpp-1/lpp"]
    finally:
        for probe in (ingest, device, lpp):
            probe.close()


def test_a_device_cannot_subscribe_to_anything(vm_broker: VmBroker) -> None:
    device = vm_broker.login("town/a")
    try:
        for topic in ("#", "urbanpulse/#", "urbanpulse/town/b/#", "urbanpulse/town/a/#", "$SYS/#"):
            assert device.subscribe(topic) == [NOT_AUTHORIZED], topic
    finally:
        device.close()


def test_a_device_cannot_join_the_platforms_share_group(vm_broker: VmBroker) -> None:
    # With the acl_file this broker had, the SUBSCRIBE was granted, and the broker then handed
    # the device its share of the readings, which the file forbade delivering to it: lost.
    ingest = ingestor(vm_broker)
    thief = vm_broker.login("town/b")
    sender = vm_broker.login("town/a")
    try:
        for topic in SUPPORTED_TOPIC_FILTERS:
            assert thief.subscribe(f"$share/{GROUP}/{topic}") == [NOT_AUTHORIZED], topic
        for n in range(50):
            assert sender.publish("urbanpulse/town/a/json", str(n).encode()) in ACCEPTED
        ingest.wait(lambda: len(ingest.messages) >= 50, "all 50 readings at the platform")
        assert thief.messages == []
    finally:
        for probe in (ingest, thief, sender):
            probe.close()


def test_a_device_cannot_take_over_the_platforms_client_id(vm_broker: VmBroker) -> None:
    ingest = ingestor(vm_broker)
    impostor = vm_broker.login("town/a", client_id=INGEST_USER)
    try:
        # The broker named the impostor's connection after its user: the platform stays.
        log = vm_broker.broker.log_text()
        assert "as town/a (p5, c1, k60, u'town/a')" in log
        assert f"as {INGEST_USER} (p5, c1, k60, u'town/a')" not in log
        assert impostor.publish("urbanpulse/town/a/json", b"after") in ACCEPTED
        ingest.wait(lambda: ingest.messages, "a reading at the platform")
        assert ingest.disconnects == [] and ingest.topics() == ["urbanpulse/town/a/json"]
    finally:
        ingest.close()
        impostor.close()


def test_the_kafka_unit_formats_its_storage_once(installed: Path, tmp_path: Path) -> None:
    """The unit's own ExecStartPre, run against a copy of its config that writes below tmp."""
    unit = parse_unit(unit_path(installed, "urbanpulse-kafka.service"))
    [command] = unit["Service"]["ExecStartPre"]
    config = (conf_dir(installed) / "kafka.properties").read_text()
    data = tmp_path / "kafka"
    local = tmp_path / "kafka.properties"
    local.write_text(re.sub(r"^log\.dirs=.*$", f"log.dirs={data}", config, flags=re.M))
    argv = command.replace("/etc/urbanpulse/kafka.properties", str(local)).split()
    first = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    cluster = (conf_dir(installed) / "kafka-cluster-id").read_text().strip()
    assert f"cluster.id={cluster}" in (data / "meta.properties").read_text()
    again = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, "a second start must leave formatted storage alone"
    assert "already formatted" in again.stdout + again.stderr
