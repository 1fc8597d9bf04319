"""Every payload format, published with mosquitto_pub on its own topic, is readable from the API."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.test_pipeline import Platform, api_ready
from tests.support import MQTT_HOST, MQTT_PORT, unique, wait_for


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[Platform, str, str]]:
    tenant, tts_app, cs_app = unique("fmt"), unique("tts-app"), unique("cs-app")
    env = {
        "URBANPULSE_MQTT__TOPICS": json.dumps(
            [
                f"urbanpulse/{tenant}/+/+",
                f"v3/{tts_app}@ttn/devices/+/up",
                f"application/{cs_app}/device/+/event/up",
            ]
        ),
        "URBANPULSE_DECODERS__TENANT_BY_APPLICATION": json.dumps(
            {f"{tts_app}@ttn": tenant, cs_app: tenant}
        ),
    }
    running = Platform(tenant, tmp_path, env)
    running.start()
    try:
        yield running, tts_app, cs_app
    finally:
        running.stop()


def mosquitto_pub(topic: str, payload: bytes, tmp: Path) -> None:
    message = tmp / "message.bin"
    message.write_bytes(payload)  # -f sends the file's bytes as they are (LPP is binary)
    broker = ["-h", MQTT_HOST, "-p", str(MQTT_PORT)]
    subprocess.run(
        ["mosquitto_pub", *broker, "-q", "1", "-t", topic, "-f", str(message)],
        check=True,
        timeout=30,
    )


@pytest.mark.timeout(300)
def test_each_format_reaches_the_api(platform: tuple[Platform, str, str], tmp_path: Path) -> None:
    running, tts_app, cs_app = platform
    tenant = running.tenant
    now = datetime.now(UTC).replace(microsecond=0)
    stamp = now.isoformat().replace("+00:00", "Z")
    cases = [  # topic, payload, (sensor id, quantity, value, unit) the API must show
        (
            f"urbanpulse/{tenant}/f-json/json",
            json.dumps({"time": stamp, "quantity": "temperature", "value": 1.5, "unit": "Cel"}),
            ("f-json", "temperature", 1.5, "Cel"),
        ),
        (
            f"urbanpulse/{tenant}/f-senml/senml",
            json.dumps([{"n": "temperature", "u": "Cel", "v": 2.5, "t": now.timestamp()}]),
            ("f-senml", "temperature", 2.5, "Cel"),
        ),
        (
            f"urbanpulse/{tenant}/f-lpp/lpp",
            bytes.fromhex("016700E1"),
            ("f-lpp", "temperature", 22.5, "Cel"),  # the channel is the probe, not a sensor
        ),
        (
            f"urbanpulse/{tenant}/f-sc/sensorcommunity",
            json.dumps(
                {
                    "esp8266id": "1",
                    "software_version": "x",
                    "sensordatavalues": [{"value_type": "SDS_P2", "value": "7.5"}],
                }
            ),
            ("f-sc", "pm2_5", 7.5, "ug/m3"),
        ),
        (
            f"v3/{tts_app}@ttn/devices/f-tts/up",
            json.dumps(
                {
                    "end_device_ids": {
                        "device_id": "f-tts",
                        "application_ids": {"application_id": tts_app},
                    },
                    "received_at": stamp,
                    "uplink_message": {
                        "decoded_payload": {"temperature": 4.5},
                        "received_at": stamp,
                    },
                }
            ),
            ("f-tts", "temperature", 4.5, "Cel"),
        ),
        (
            f"application/{cs_app}/device/0102030405060708/event/up",
            json.dumps(
                {
                    "deviceInfo": {"devEui": "0102030405060708", "applicationId": cs_app},
                    "time": stamp,
                    "object": {"temperature": 5.5},
                }
            ),
            ("0102030405060708", "temperature", 5.5, "Cel"),
        ),
    ]
    wait_for(lambda: api_ready(running), 90, "the API to report every dependency healthy")
    for topic, payload, _ in cases:
        mosquitto_pub(topic, payload if isinstance(payload, bytes) else payload.encode(), tmp_path)
    window = {
        "from": (now - timedelta(minutes=5)).isoformat(),
        "to": (now + timedelta(minutes=5)).isoformat(),
        "tenant": tenant,
    }

    def found(sensor_id: str, quantity: str) -> list[object] | None:
        running.check_alive()
        body = running.get(f"/v1/sensors/{sensor_id}/observations", quantity=quantity, **window)
        return [(o["value"], o["unit"]) for o in body["data"]] or None  # type: ignore[index]

    for _, _, (sensor_id, quantity, value, unit) in cases:
        rows = wait_for(lambda s=sensor_id, q=quantity: found(s, q), 60, f"{sensor_id} in the API")
        assert rows == [(value, unit)], sensor_id
