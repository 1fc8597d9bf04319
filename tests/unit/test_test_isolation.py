"""Integration and end-to-end tests take service addresses from tests/support.py only.

``make test`` runs them against services of their own on other ports than a ``make up``
platform (deploy/local/services.sh --test). A test that names a standard port, or builds a
service section without its address (``KafkaSettings(deadletter_topic=...)`` takes the default
bootstrap, whatever the environment says), would quietly talk to the platform's services
instead, or to none. A net, not a proof: an address can be hidden in ways this does not see.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
CHECKED = sorted(
    path for folder in ("integration", "e2e") for path in (TESTS / folder).glob("*.py")
)
# A standard port of deploy/local/services.sh or of the metrics endpoints used as an address:
# after 127.0.0.1: or localhost:, as an argument or a value, or as a string ("1883"). Prose
# ("the shared Kafka (9092)") and Compose's service names ("http://influxdb:8086") pass.
PORTS = r"(1883|9092|9093|8086|8088|9101|9102|9103)\b"
STANDARD_PORT = re.compile(
    rf"(127\.0\.0\.1|localhost):{PORTS}"  # an address
    rf"|(\w\(|[,=])\s*{PORTS}"  # an argument or a value, not "(9092)" in prose
    rf"|[\"']{PORTS}[\"']"  # a string such as "1883"
)
# The keywords that give a service section its address; a section built without one (and
# without **kwargs) has the default address. Reading a default off it (``MqttSettings().x``)
# is fine.
ADDRESS_KEYWORDS = {
    "MqttSettings": {"host", "port"},
    "KafkaSettings": {"bootstrap"},
    "InfluxSettings": {"url"},
    "MetricsSettings": {"ingest_port", "worker_port", "supervisor_port"},
}


def sections_without_address(source: str) -> list[int]:
    """Lines that build a service section with its default address."""
    tree = ast.parse(source)
    read_off = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    lines = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        wanted = ADDRESS_KEYWORDS.get(node.func.id)
        if wanted is None or id(node) in read_off:
            continue
        given = {k.arg for k in node.keywords}
        if None not in given and not wanted & given:  # None: a **mapping
            lines.append(node.lineno)
    return lines


def offending_lines(path: Path) -> list[str]:
    """The lines of ``path`` that name a standard port or a section without its address."""
    text = path.read_text()
    lines = text.splitlines()
    numbers = {n for n, line in enumerate(lines, start=1) if STANDARD_PORT.search(line)}
    numbers |= set(sections_without_address(text))
    return [f"{path.name}:{n}: {lines[n - 1].strip()}" for n in sorted(numbers)]


def test_the_check_sees_what_it_looks_for() -> None:
    assert STANDARD_PORT.search('client.connect("127.0.0.1", 1883)')
    assert STANDARD_PORT.search('"URBANPULSE_INFLUX__URL": "http://127.0.0.1:8086"')
    assert STANDARD_PORT.search('"URBANPULSE_MQTT__PORT": "1883",')
    assert STANDARD_PORT.search("assert not port_open(9092)")
    assert not STANDARD_PORT.search('influx_url="http://influxdb:8086"')
    assert not STANDARD_PORT.search("The shared broker on 1883 is never touched")
    assert not STANDARD_PORT.search("The shared Kafka (9092) speaks PLAINTEXT only")
    assert sections_without_address("connect(MqttSettings(), client_id=x)") == [1]
    assert sections_without_address("k = KafkaSettings(\n  deadletter_topic='t')") == [1]
    assert sections_without_address("i = InfluxSettings(\n    url=u, raw_bucket=b)") == []
    assert sections_without_address("m = MqttSettings(**tls, username=u)") == []
    assert sections_without_address("n = MqttSettings().max_payload_bytes - 1024") == []


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_test_names_a_service_port_of_its_own(path: Path) -> None:
    assert offending_lines(path) == [], (
        "use the addresses of tests/support.py (MQTT_HOST, MQTT_PORT, KAFKA_BOOTSTRAP, "
        "INFLUX_URL) or copies of Settings() sections, which make test points at the test "
        "services"
    )
