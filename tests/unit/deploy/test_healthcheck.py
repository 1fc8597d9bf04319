"""deploy/docker/healthcheck.py, the containers' health check, against sockets on loopback."""

from __future__ import annotations

import importlib.util
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import ModuleType

import pytest

from tests.unit.deploy.support import DEPLOY
from urbanpulse.settings import Settings


@pytest.fixture(scope="module")
def healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "healthcheck", DEPLOY / "docker" / "healthcheck.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    # shutdown() waits for serve_forever's next poll: 0.5 s by default, at every teardown
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def test_addresses_come_from_the_settings(healthcheck: ModuleType) -> None:
    settings = Settings.model_validate(
        {
            "mqtt": {"host": "mosquitto", "port": 1884},
            "kafka": {"bootstrap": "k1:9092, k2:9093,[::1]:9094"},
            "influx": {"url": "https://influx.example.org"},
        }
    )
    assert healthcheck._addresses(settings, "mqtt") == [("mosquitto", 1884)]
    assert healthcheck._addresses(settings, "kafka") == [("k1", 9092), ("k2", 9093), ("::1", 9094)]
    assert healthcheck._addresses(settings, "influxdb") == [("influx.example.org", 443)]
    with pytest.raises(SystemExit):
        healthcheck._addresses(settings, "redis")


def test_reachable_when_any_address_answers(healthcheck: ModuleType, listening: int) -> None:
    assert healthcheck.reachable([("127.0.0.1", closed_port()), ("127.0.0.1", listening)])
    assert not healthcheck.reachable([("127.0.0.1", closed_port())])


def test_main_reports_what_is_down(
    healthcheck: ModuleType,
    listening: int,
    http_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("URBANPULSE_MQTT__HOST", "127.0.0.1")
    monkeypatch.setenv("URBANPULSE_MQTT__PORT", str(listening))
    monkeypatch.setenv("URBANPULSE_KAFKA__BOOTSTRAP", f"127.0.0.1:{closed_port()}")
    assert healthcheck.main(["--http", f"http://127.0.0.1:{http_port}/health", "mqtt"]) == 0
    assert healthcheck.main(["mqtt", "kafka"]) == 1
    assert "kafka" in capsys.readouterr().err
    assert healthcheck.main(["--http", f"http://127.0.0.1:{http_port}/other"]) == 1
