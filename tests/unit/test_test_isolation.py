"""Integration and end-to-end tests take service addresses from tests/support.py only.

``make test`` runs them against services of their own on other ports than a ``make up``
platform (deploy/local/services.sh --test). A test that names a standard port, or builds a
service section from its defaults (``MqttSettings()``), would quietly talk to the platform's
services instead, or to none.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
CHECKED = sorted(
    path for folder in ("integration", "e2e") for path in (TESTS / folder).glob("*.py")
)
# The standard ports of deploy/local/services.sh and of the metrics endpoints, unless they
# follow a host name ("http://influxdb:8086" is a Compose service's address, not ours).
STANDARD_PORT = re.compile(r"(?<![A-Za-z]:)\b(1883|9092|9093|8086|8088|9101|9102|9103)\b")
DEFAULT_SECTION = re.compile(r"\b(Mqtt|Kafka|Influx|Metrics)Settings\(\)")


def offending_lines(path: Path) -> list[str]:
    """The lines of ``path`` that name a standard port or a default service section."""
    return [
        f"{path.name}:{number}: {line.strip()}"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if STANDARD_PORT.search(line) or DEFAULT_SECTION.search(line)
    ]


def test_the_check_sees_what_it_looks_for() -> None:
    assert STANDARD_PORT.search('client.connect("127.0.0.1", 1883)')
    assert STANDARD_PORT.search('"URBANPULSE_INFLUX__URL": "http://127.0.0.1:8086"')
    assert not STANDARD_PORT.search('influx_url="http://influxdb:8086"')
    assert DEFAULT_SECTION.search("connect(MqttSettings(), client_id=x)")


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_test_names_a_service_port_of_its_own(path: Path) -> None:
    assert offending_lines(path) == [], (
        "use the addresses of tests/support.py (MQTT_HOST, MQTT_PORT, KAFKA_BOOTSTRAP, "
        "INFLUX_URL) or sections of Settings(), which make test points at the test services"
    )
