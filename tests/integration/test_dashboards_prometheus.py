"""Every PromQL panel query of every board returns data from a real Prometheus.

The test runs the real ingestor, stream worker and API as child processes (own topics, tenant
and ports), a real Prometheus (built by ``deploy/local/services.sh install``) scraping their
``/metrics`` every second, and keeps good and malformed messages flowing and API requests
coming while it evaluates each query the way Grafana would, with ``$__rate_interval`` set to a
window that holds several scrapes. A query "returns data" when Prometheus answers a non-empty
vector with at least one finite value: ``histogram_quantile`` over an idle histogram is NaN,
which Grafana draws as nothing.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.publish as mqtt_publish
import pytest

from tests.integration.test_dashboards_queries import PROM_QUERIES
from tests.support import MQTT_HOST, MQTT_PORT, REPO, Child, free_port, unique, wait_for

PROMETHEUS = REPO / ".local" / "bin" / "prometheus"
RATE_INTERVAL = "20s"


class Platform:
    """Ingestor, worker, API and Prometheus of one test, and the traffic that feeds them."""

    def __init__(self, tmp: Path) -> None:
        if not PROMETHEUS.exists():
            raise AssertionError(
                f"{PROMETHEUS} is missing: `deploy/local/services.sh install` builds it "
                "(`make test` runs that)"
            )
        self.tenant = unique("prom")
        self.ports = {name: free_port() for name in ("ingest", "worker", "api", "prometheus")}
        self.env = os.environ | {
            "URBANPULSE_MQTT__CLIENT_ID": unique("it-prom-ingest"),
            "URBANPULSE_MQTT__TOPICS": json.dumps([f"urbanpulse/{self.tenant}/+/+"]),
            "URBANPULSE_KAFKA__READINGS_TOPIC": unique("it-prom-readings"),
            "URBANPULSE_KAFKA__DEADLETTER_TOPIC": unique("it-prom-deadletter"),
            "URBANPULSE_KAFKA__ALERTS_TOPIC": unique("it-prom-alerts"),
            "URBANPULSE_KAFKA__PARTITIONS": "2",
            "URBANPULSE_WORKER__APP_ID": unique("it-prom-worker"),
            "URBANPULSE_WORKER__DATADIR": str(tmp / "worker"),
            "URBANPULSE_WORKER__BATCH_SECONDS": "0.2",
            "URBANPULSE_METRICS__INGEST_PORT": str(self.ports["ingest"]),
            "URBANPULSE_METRICS__WORKER_PORT": str(self.ports["worker"]),
            "URBANPULSE_API__PORT": str(self.ports["api"]),
        }
        self.children = [
            Child.urbanpulse([name], self.env, tmp / f"{name}.log")
            for name in ("ingest", "worker", "api")
        ]
        config = tmp / "prometheus.yml"
        config.write_text(self.scrape_config())
        self.children.append(
            Child(
                "prometheus",
                [
                    str(PROMETHEUS),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
                ],
                self.env,
                tmp / "prometheus.log",
            )
        )
        self.stopping = threading.Event()
        self.traffic = threading.Thread(target=self.send_traffic, daemon=True)

    def scrape_config(self) -> str:
        jobs = "".join(
            f"  - job_name: {name}\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{self.ports[name]}']\n"
            for name in ("ingest", "worker", "api")
        )
        return f"global:\n  scrape_interval: 1s\nscrape_configs:\n{jobs}"

    def send_traffic(self) -> None:
        """Good and bad messages to the ingestor, requests to the API, until stopped."""
        api = f"http://127.0.0.1:{self.ports['api']}"
        n = 0
        while not self.stopping.is_set():
            n += 1
            reading = {"quantity": "pm10", "value": n % 40, "unit": "ug/m3"}
            messages = [
                (f"urbanpulse/{self.tenant}/air-{n % 5}/json", json.dumps({"readings": [reading]})),
                (f"urbanpulse/{self.tenant}/air-bad/json", "not json"),
            ]
            # OSError: the broker restarting under another test, or an API answer of 404 (which
            # is traffic too); a process that died is caught by check_alive.
            with contextlib.suppress(OSError):
                mqtt_publish.multiple(
                    [(topic, payload, 1, False) for topic, payload in messages],
                    hostname=MQTT_HOST,
                    port=MQTT_PORT,
                )
            for path in ("/v1/sensors", f"/v1/latest?tenant={self.tenant}", "/v1/nope"):
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(api + path, timeout=10).read()
            self.stopping.wait(0.3)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Evaluate ``expr`` now; the result vector."""
        url = f"http://127.0.0.1:{self.ports['prometheus']}/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr}
        )
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def targets_up(self) -> bool:
        for child in self.children:
            child.check_alive()
        return len([s for s in self.query("up == 1") if s["value"][1] == "1"]) == 3

    def stop(self) -> None:
        self.stopping.set()
        if self.traffic.is_alive():
            self.traffic.join(timeout=15)
        for child in self.children:
            child.stop()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = Platform(tmp_path_factory.mktemp("prometheus"))
    try:
        wait_for(lambda: _ready(running), 90, "Prometheus up and scraping all three components")
        running.traffic.start()
        yield running
    finally:
        running.stop()


def _ready(platform: Platform) -> bool:
    try:
        return platform.targets_up()
    except OSError:
        return False


def finite_values(result: list[dict[str, Any]]) -> list[float]:
    """The finite sample values of an instant-query vector."""
    values = [float(sample["value"][1]) for sample in result]
    return [v for v in values if math.isfinite(v)]


@pytest.mark.parametrize(
    ("uid", "title", "expr"), PROM_QUERIES, ids=[f"{u}: {t}" for u, t, _ in PROM_QUERIES]
)
def test_promql_panel_returns_data(platform: Platform, uid: str, title: str, expr: str) -> None:
    text = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$__interval", "5s")

    def answered() -> list[float]:
        for child in platform.children:
            child.check_alive()
        return finite_values(platform.query(text))

    values = wait_for(answered, 90, f"data for {uid} / {title}: {text}")
    assert values


def test_consumer_lag_falls_back_to_zero(platform: Platform) -> None:
    """The lag gauge is real: once the traffic stops the worker catches up to 0."""
    platform.stopping.set()
    platform.traffic.join(timeout=15)

    def caught_up() -> bool:
        values = finite_values(platform.query("sum(urbanpulse_worker_consumer_lag)"))
        return bool(values) and values[0] == 0

    wait_for(caught_up, 60, "the worker's consumer lag to reach 0")


def test_a_missing_metric_gives_no_data(platform: Platform) -> None:
    """The check above can fail: a name nobody exposes answers an empty vector."""
    assert platform.query("sum(rate(urbanpulse_no_such_metric_total[20s]))") == []
