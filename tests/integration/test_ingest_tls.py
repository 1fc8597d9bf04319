"""The ingestor reads a separate broker over TLS with credentials, as a network server's."""

from __future__ import annotations

import getpass
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_pipeline import free_port
from tests.integration.test_ingest_kafka import running_ingestor
from tests.support import consume_readings, isolated_settings, port_open, unique, wait_for
from urbanpulse.credentials import INGEST_USER, acl_file, password_file, plan_accounts
from urbanpulse.mqtt import make_client
from urbanpulse.settings import MqttSettings


def make_certificates(folder: Path) -> None:
    """A throw-away CA and a server certificate for 127.0.0.1, made with openssl."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    )
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    )


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[int, dict[str, str], Path]]:
    make_certificates(tmp_path)
    accounts = plan_accounts([("town", "tls-1")], {})
    (tmp_path / "passwd").write_text(password_file(accounts))
    (tmp_path / "acl").write_text(acl_file(accounts))
    port = free_port()
    (tmp_path / "mosquitto.conf").write_text(
        f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\n"
        f"cafile {tmp_path / 'ca.crt'}\ncertfile {tmp_path / 'server.crt'}\n"
        f"keyfile {tmp_path / 'server.key'}\nallow_anonymous false\n"
        f"password_file {tmp_path / 'passwd'}\nacl_file {tmp_path / 'acl'}\n"
    )
    process = subprocess.Popen(
        ["mosquitto", "-c", str(tmp_path / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: port_open(port), 10, "the TLS test broker")
        yield port, {a.username: a.password for a in accounts}, tmp_path / "ca.crt"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_ingest_from_a_tls_broker_with_credentials(
    tls_broker: tuple[int, dict[str, str], Path],
) -> None:
    port, passwords, ca = tls_broker
    settings = isolated_settings("town")
    tls = dict(host="127.0.0.1", port=port, tls=True, ca_file=str(ca))
    mqtt_settings = MqttSettings.model_validate(
        settings.mqtt.model_dump()
        | tls
        | {"username": INGEST_USER, "password": passwords[INGEST_USER]}
    )
    settings = settings.model_copy(update={"mqtt": mqtt_settings})
    device_settings = MqttSettings(**tls, username="town/tls-1", password=passwords["town/tls-1"])
    with running_ingestor(settings) as ingestor:
        wait_for(ingestor.connected.is_set, 30, "the ingestor to subscribe over TLS")
        device = make_client(device_settings, unique("tls-dev"))
        device.connect("127.0.0.1", port)
        device.loop_start()
        try:
            body = json.dumps({"quantity": "temperature", "value": 9.5, "unit": "Cel"})
            device.publish("urbanpulse/town/tls-1/json", body, qos=1).wait_for_publish(10)
        finally:
            device.disconnect()
            device.loop_stop()
        [reading] = consume_readings(settings.kafka.bootstrap, settings.kafka.readings_topic, 1, 30)
    assert (reading.sensor_id, reading.value) == ("tls-1", 9.5)
