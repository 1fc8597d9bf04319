"""deploy/tools/backup.sh and restore.sh on an InfluxDB 1.8 of this test's own.

The procedure of docs/production.md ("Backup and restore"), end to end: readings of a
registered sensor go through the worker's pure pipeline and its InfluxDB writer, the API
answers; back up; wipe InfluxDB (stop, delete its data, start, as `services.sh start` leaves
it: an empty database) and delete the kept files; restore; the API answers exactly as before.
The shared InfluxDB on 8086 is never touched: this one listens on free ports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from streams.alerts import rules_from_settings
from streams.influx_writer import InfluxWriter
from streams.pipeline import SensorState, StreamsConfig, process_sensor, snapshot_aggregates
from streams.points import SensorLabels, aggregate_line, alert_line
from tests.support import REPO, Child, free_port, http_get, unique, wait_for
from urbanpulse.model import Reading
from urbanpulse.registry import parse_registry
from urbanpulse.settings import (
    AlertRuleSettings,
    ApiSettings,
    InfluxSettings,
    Settings,
    StreamsSettings,
)

INFLUXD = REPO / ".local" / "bin" / "influxd"
BACKUP = REPO / "deploy" / "tools" / "backup.sh"
RESTORE = REPO / "deploy" / "tools" / "restore.sh"
DATABASE = "urbanpulse"
KEY = "backup-test-key-0123456789"
# Whole hours in the API's sensors look-back, so windows line up.
T0 = (datetime.now(UTC) - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
SPAN = {"from": (T0 - timedelta(hours=1)).isoformat(), "to": (T0 + timedelta(hours=3)).isoformat()}


class PrivateInflux:
    """influxd 1.8 on free loopback ports, with its data in a folder of the test."""

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir()
        self.http, self.rpc = free_port(), free_port()
        self.config = home / "influxdb.conf"
        data = home / "data"
        # The settings of deploy/local/influxdb.conf that matter here, on this test's ports.
        self.config.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{self.rpc}"\n'
            f'[meta]\n  dir = "{data}/meta"\n'
            f'[data]\n  dir = "{data}/data"\n  wal-dir = "{data}/wal"\n'
            "  query-log-enabled = false\n"
            f'[http]\n  enabled = true\n  bind-address = "127.0.0.1:{self.http}"\n'
            "  auth-enabled = false\n  flux-enabled = true\n  log-enabled = false\n"
            "[continuous_queries]\n  enabled = false\n"
        )
        self.data = data
        self.process: Child | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    def start(self) -> None:
        self.process = Child(
            "influxd",
            [str(INFLUXD), "run", "-config", str(self.config)],
            dict(os.environ),
            self.home / "influxd.log",
        )
        wait_for(lambda: http_get(f"{self.url}/ping", 2)[0] == 204, 90, "the test's influxd")
        # What deploy/local/services.sh does at every start: the database, raw 30 days, and
        # aggregates and alerts kept for good.
        self.influxql(f"CREATE DATABASE {DATABASE} WITH DURATION 30d NAME raw")
        self.influxql(f"CREATE RETENTION POLICY agg ON {DATABASE} DURATION INF REPLICATION 1")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def wipe(self) -> None:
        """Lose everything, as a broken disk would, and start again empty."""
        self.stop()
        shutil.rmtree(self.data)
        self.start()

    def influxql(self, statement: str) -> dict[str, Any]:
        body = urllib.parse.urlencode({"q": statement}).encode()
        with urllib.request.urlopen(f"{self.url}/query", body, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def settings(self) -> InfluxSettings:
        return InfluxSettings(
            url=self.url, raw_bucket=f"{DATABASE}/raw", aggregate_bucket=f"{DATABASE}/agg"
        )


@pytest.fixture
def influx(tmp_path: Path) -> Iterator[PrivateInflux]:
    assert INFLUXD.is_file(), f"{INFLUXD} is missing: `make services-start` builds it"
    server = PrivateInflux(tmp_path / "influxdb")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def readings(tenant: str) -> list[Reading]:
    """Two hours of a registered air sensor, one an unregistered noise sensor; one spike."""
    out = []
    for minute in range(0, 120, 2):
        for sensor, quantity, unit, value in (
            ("air-1", "pm2_5", "ug/m3", 60.0 if 30 <= minute < 40 else 8.0 + minute % 7),
            ("noise-1", "noise_level", "dB", 40.0 + minute % 11),
        ):
            at = T0 + timedelta(minutes=minute)
            out.append(
                Reading(
                    tenant=tenant,
                    sensor_id=sensor,
                    quantity=quantity,
                    value=value,
                    unit=unit,
                    observed_at=at,
                    received_at=at + timedelta(seconds=2),
                    source_format="json",
                    message_id=f"{sensor}-{minute}",
                )
            )
    return out


def store(influx: InfluxSettings, registry_text: str, tenant: str) -> None:
    """What the worker stores for these readings: raw points, aggregates, alerts."""
    registry = parse_registry(registry_text, "yaml")
    rule = AlertRuleSettings(name="pm2_5_high", quantity="pm2_5", op=">", value=50)
    config = StreamsConfig(rules=rules_from_settings([rule]))
    writer = InfluxWriter(influx)
    try:
        for sensor in ("air-1", "noise-1"):
            info = registry.get((tenant, sensor))
            batch = [r for r in readings(tenant) if r.sensor_id == sensor]
            state, outcome = process_sensor(SensorState(), batch, info, True, config)
            labels = SensorLabels.of(info)
            writer.write(outcome.stored, {r.key: labels for r in outcome.stored})
            aggregates = snapshot_aggregates(state, config)
            writer.write_lines(
                [aggregate_line(u, labels.privacy) for u in aggregates]
                + [alert_line(e, labels.privacy) for e in outcome.alerts]
            )
    finally:
        writer.close()


def answers(settings: Settings, tenant: str) -> dict[str, Any]:
    """The API's answers that a restore must bring back, from a fresh app (no caches)."""
    queries: dict[str, tuple[str, dict[str, Any]]] = {
        "sensors": ("/v1/sensors", {"tenant": tenant}),
        "air observations": ("/v1/sensors/air-1/observations", {"tenant": tenant, **SPAN}),
        "noise observations (csv)": (
            "/v1/sensors/noise-1/observations",
            {"tenant": tenant, "format": "csv", **SPAN},
        ),
        "observations": ("/v1/observations", {"tenant": tenant, "limit": 10_000, **SPAN}),
        "aggregates 15m": ("/v1/aggregates", {"tenant": tenant, "window": "15m", **SPAN}),
        "aggregates 1h": (
            "/v1/aggregates",
            {"tenant": tenant, "scope": "sensor", "window": "1h", **SPAN},
        ),
        "alerts": ("/v1/alerts", {"tenant": tenant}),
    }
    out: dict[str, Any] = {}
    with TestClient(create_app(settings)) as client:
        for name, (path, params) in queries.items():
            response = client.get(path, params=params)
            assert response.status_code == 200, f"{name}: {response.text}"
            out[name] = response.text if params.get("format") == "csv" else response.json()
        admin = client.get("/v1/admin/sensors", headers={"X-API-Key": KEY})
        out["registry (admin)"] = (admin.status_code, admin.json())
    return out


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=REPO, capture_output=True, text=True, timeout=180
    )


def test_backup_wipe_restore_gives_the_same_answers(influx: PrivateInflux, tmp_path: Path) -> None:
    tenant = unique("backup")
    config = tmp_path / "config"
    config.mkdir()
    registry = config / "sensors.yaml"
    registry_text = (
        f"sensors:\n  - tenant: {tenant}\n    sensor_id: air-1\n    district: centrum\n"
        "    licence: CC-BY-4.0\n    lat: 52.09\n    lon: 5.12\n    interval_s: 120\n"
    )
    registry.write_text(registry_text)
    env_file = config / ".env"
    env_file.write_text("URBANPULSE_MQTT__PASSWORD=secret\n")
    env_file.chmod(0o600)
    settings = Settings(
        influx=influx.settings(),
        streams=StreamsSettings(registry_path=str(registry)),
        api=ApiSettings(api_keys=[f"{KEY}:admin"], rate_anonymous_per_s=0, sensors_cache_s=0),
    )
    store(settings.influx, registry_text, tenant)
    before = answers(settings, tenant)
    assert [s["id"] for s in before["sensors"]["data"]] == ["air-1", "noise-1"]
    assert len(before["observations"]["data"]) == 120
    assert before["aggregates 15m"]["data"] and before["alerts"]["data"]
    assert before["registry (admin)"][0] == 200

    backup = tmp_path / "backup"
    rpc = ["--influx-rpc", f"127.0.0.1:{influx.rpc}", "--database", DATABASE]
    made = run(BACKUP, *rpc, "--registry", registry, "--file", env_file, backup)
    assert made.returncode == 0, made.stderr
    assert (backup / "BACKUP").is_file()
    assert backup.stat().st_mode & 0o077 == 0  # settings files hold secrets

    # A restore over live data is refused, and changes nothing.
    restore = [RESTORE, "--influx-url", influx.url, "--influx-rpc", f"127.0.0.1:{influx.rpc}"]
    refused = run(*restore, backup)
    assert refused.returncode == 1
    assert f"database '{DATABASE}' on {influx.url} holds data" in refused.stderr
    assert answers(settings, tenant) == before

    influx.wipe()
    registry.unlink()
    env_file.unlink()
    wiped = answers(settings, tenant)
    # Every answer compared below depends on what was lost (so the comparison can fail).
    assert [name for name in before if wiped[name] == before[name]] == []

    restored = run(*restore, backup)
    assert restored.returncode == 0, restored.stderr
    assert answers(settings, tenant) == before
    assert registry.read_text() == registry_text
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert env_file.read_text() == "URBANPULSE_MQTT__PASSWORD=secret\n"
