"""A sensor the registry classes restricted or personal never leaves InfluxDB by the open API.

Real registry file, the worker's real adapter (``StreamWorker``) and InfluxDB writer, the real
API on real InfluxDB. Only the Kafka side of the worker (output topics, state tables) is
replaced by in-memory stand-ins: what is tested here is registry → stored tags → API filter,
and the worker on real Kafka is tested in ``test_streams_worker.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from influxdb_client import InfluxDBClient

from api.app import create_app
from api.flux import params_record
from streams.app import StreamWorker
from streams.influx_writer import InfluxWriter
from tests.support import unique
from tests.unit.streams.helpers import FakeTopic, memory_table
from urbanpulse.model import Reading
from urbanpulse.registry import RegistryFile
from urbanpulse.settings import AlertRuleSettings, Settings, StreamsSettings

# Whole hour, two hours ago: inside the sensors look-back and the default query ranges.
T0 = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
SENSORS = {  # sensor → (privacy, licence, sensor type)
    "open-1": ("open", "CC-BY-4.0", "air-quality"),
    "restricted-1": ("restricted", "proprietary", "air-quality"),
    "personal-1": ("personal", "", "people-counter"),
}
MINUTES = 10
# Narrow: the 1 h window at T0 and the readings; less for a busy InfluxDB to scan.
RANGE = {"from": T0.isoformat(), "to": (T0 + timedelta(hours=1)).isoformat()}


def readings(tenant: str) -> list[Reading]:
    return [
        Reading(
            tenant=tenant,
            sensor_id=sensor,
            quantity="pm2_5",
            value=20.0 + minute,  # above the test's alert threshold from the first reading
            unit="ug/m3",
            observed_at=T0 + timedelta(minutes=minute),
            received_at=T0 + timedelta(minutes=minute, seconds=1),
            source_format="json",
            message_id=f"{sensor}-{minute}",
        )
        for minute in range(MINUTES)
        for sensor in SENSORS
    ]


async def run_worker(settings: Settings, values: list[bytes]) -> None:
    """Feed the readings through the worker, then its district topic through the district agent."""
    tables = {"sensor": memory_table(), "district": memory_table()}
    topics = {n: FakeTopic() for n in ("deadletter", "alerts", "district", "observations")}
    registry = RegistryFile(settings.streams.registry_path, settings.streams.registry_reload_s)
    writer = InfluxWriter(settings.influx)
    worker = StreamWorker(settings, writer, registry, dict(topics), tables)
    try:
        await worker.handle_readings([(0, v) for v in values])
        district = [(0, k or b"", v) for k, v in topics["district"].sent]
        await worker.handle_district(district)
        await worker.snapshot()  # as the worker's timer does: writes the windows' aggregates
    finally:
        writer.close()


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> str:
    name = unique("privacy")
    registry: Path = tmp_path_factory.mktemp("privacy") / "sensors.csv"
    registry.write_text(
        "tenant,sensor_id,district,privacy,licence,sensor_type\n"
        + "".join(f"{name},{s},centre,{p},{lic},{t}\n" for s, (p, lic, t) in SENSORS.items())
    )
    rule = AlertRuleSettings(name="pm_test", quantity="pm2_5", op=">", value=15)
    settings = Settings(
        streams=StreamsSettings(registry_path=str(registry), alert_rules=[rule], windows=["1h"])
    )
    asyncio.run(run_worker(settings, [r.to_bytes() for r in readings(name)]))
    return name


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    # a generous timeout: InfluxDB on a machine shared with other test runs can be slow
    influx = Settings().influx.model_copy(update={"timeout_ms": 180_000})
    with TestClient(create_app(Settings(influx=influx))) as test_client:
        yield test_client


def data(client: TestClient, url: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(url, params=params)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


def test_raw_points_carry_the_registry_labels_as_tags(tenant: str) -> None:
    settings = Settings().influx
    query = params_record({"tenant": tenant}) + (
        'from(bucket: "urbanpulse/raw") |> range(start: -1d)\n'
        '  |> filter(fn: (r) => r._measurement == "reading" and r.tenant == params.tenant and'
        ' r._field == "value")\n  |> last()'
    )
    with InfluxDBClient(url=settings.url, token="", org=settings.org) as influx:
        tables = influx.query_api().query(query, org=settings.org)
    labels = {
        r.values["sensor_id"]: (
            r.values["privacy"],
            r.values.get("licence") or "",
            r.values["sensor_type"],
        )
        for table in tables
        for r in table.records
    }
    assert labels == SENSORS


def test_only_the_open_sensor_is_listed(client: TestClient, tenant: str) -> None:
    assert [s["id"] for s in data(client, "/v1/sensors", tenant=tenant)] == ["open-1"]


def test_observations_of_restricted_and_personal_sensors_are_not_published(
    client: TestClient, tenant: str
) -> None:
    rows = data(client, "/v1/observations", tenant=tenant, limit=1000, **RANGE)
    assert {r["sensor_id"] for r in rows} == {"open-1"} and len(rows) == MINUTES
    for sensor in ("restricted-1", "personal-1"):
        assert data(client, f"/v1/sensors/{sensor}/observations", tenant=tenant, **RANGE) == []


def test_aggregates_and_alerts_leave_them_out(client: TestClient, tenant: str) -> None:
    sensor_aggs = data(client, "/v1/aggregates", tenant=tenant, window="1h", **RANGE)
    assert {a["sensor_id"] for a in sensor_aggs} == {"open-1"}
    [district] = data(
        client, "/v1/aggregates", tenant=tenant, window="1h", scope="district", **RANGE
    )
    # only the open sensor feeds the district: its count and mean, not the three sensors'
    assert district["count"] == MINUTES and district["mean"] == pytest.approx(20 + 4.5)
    alerts = data(client, "/v1/alerts", tenant=tenant, **RANGE)
    assert {a["sensor_id"] for a in alerts} == {"open-1"}
