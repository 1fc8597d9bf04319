"""Generated credentials on a real Mosquitto: a device may publish only on its own topics."""

from __future__ import annotations

import getpass
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.e2e.test_pipeline import free_port
from tests.support import port_open, unique, wait_for
from urbanpulse.credentials import INGEST_USER, acl_file, password_file, plan_accounts


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    accounts = plan_accounts([("town", "a"), ("town", "b")], {})
    (tmp_path / "passwd").write_text(password_file(accounts))
    (tmp_path / "acl").write_text(acl_file(accounts))
    port = free_port()
    (tmp_path / "mosquitto.conf").write_text(
        # As root, Mosquitto would drop to its own user, who cannot read pytest's tmp_path.
        f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {tmp_path / 'passwd'}\nacl_file {tmp_path / 'acl'}\n"
    )
    process = subprocess.Popen(
        ["mosquitto", "-c", str(tmp_path / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: port_open(port), 10, "the test broker")
        yield port, {a.username: a.password for a in accounts}
    finally:
        process.terminate()
        process.wait(timeout=10)


def client(port: int, username: str, password: str) -> tuple[mqtt.Client, list[str]]:
    received: list[str] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("cred"), protocol=mqtt.MQTTv5)
    c.username_pw_set(username, password)
    c.on_message = lambda _c, _u, msg: received.append(msg.topic)
    return c, received


def test_devices_publish_only_on_their_own_topics(broker: tuple[int, dict[str, str]]) -> None:
    port, passwords = broker
    reader, received = client(port, INGEST_USER, passwords[INGEST_USER])
    subscribed = threading.Event()
    reader.on_subscribe = lambda *_: subscribed.set()
    reader.connect("127.0.0.1", port)
    reader.subscribe("urbanpulse/#", qos=1)
    reader.loop_start()
    device, _ = client(port, "town/a", passwords["town/a"])
    device.connect("127.0.0.1", port)
    device.loop_start()
    try:
        wait_for(subscribed.is_set, 10, "the ingest user's subscription")
        device.publish("urbanpulse/town/a/json", b"{}", qos=1).wait_for_publish(10)
        device.publish("urbanpulse/town/b/json", b"{}", qos=1).wait_for_publish(10)
        device.publish("urbanpulse/town/a/json", b"{}", qos=1).wait_for_publish(10)
        wait_for(lambda: len(received) >= 2, 10, "the device's own messages")
        threading.Event().wait(1)
    finally:
        for c in (reader, device):
            c.disconnect()
            c.loop_stop()
    assert received == ["urbanpulse/town/a/json", "urbanpulse/town/a/json"]


def test_a_wrong_password_is_refused(broker: tuple[int, dict[str, str]]) -> None:
    port, _ = broker
    device, _ = client(port, "town/a", "wrong")
    assert device.connect("127.0.0.1", port) == 0  # TCP ok; the broker refuses in CONNACK
    refused = threading.Event()
    device.on_connect = lambda _c, _u, _f, reason, _p: reason.is_failure and refused.set()
    device.loop_start()
    try:
        wait_for(refused.is_set, 10, "the broker to refuse the wrong password")
    finally:
        device.loop_stop()
