"""Every panel and variable query of every board runs on the real InfluxDB and returns data.

The test writes its own points (raw readings, window aggregates and alert episodes, in the
schema the stream worker writes) under a tenant no other test uses, then substitutes what
Grafana would: the time macros ``v.timeRangeStart``/``v.timeRangeStop`` as RFC 3339 time
literals and ``v.windowPeriod`` as a duration, and each ``${variable}`` / ``${variable:regex}``
as Grafana formats the selected values, and ``v.defaultBucket`` as the default bucket of the
query's data source (raw or aggregate bucket). Prometheus panels have no Prometheus here: their
PromQL is parsed (promql-parser, the Rust parser used by GreptimeDB) and the ingest metric
names they use are checked against what the real ingestor exposes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import promql_parser
import pytest
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from prometheus_client import generate_latest

from dashboards.boards import BOARDS
from dashboards.datasources import INFLUX_AGG_UID, INFLUX_UID
from dashboards.render import board_json
from ingest.metrics import IngestMetrics
from ingest.stats import Stats
from tests.support import unique
from urbanpulse.settings import InfluxSettings

INFLUX = InfluxSettings()
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
START = NOW - timedelta(hours=6)
DISTRICTS = ("north", "south")
SENSORS: dict[str, tuple[str, tuple[tuple[str, str, float], ...], float, float]] = {
    # sensor id: (district, ((quantity, unit, base value), ...), lat, lon)
    "air-1": (
        "north",
        (
            ("pm2_5", "ug/m3", 12.0),
            ("pm10", "ug/m3", 30.0),
            ("no2", "ug/m3", 20.0),
            ("o3", "ug/m3", 60.0),
            ("temperature", "Cel", 8.5),
            ("relative_humidity", "%", 80.0),
            ("pressure", "hPa", 1012.0),
            ("wind_speed", "m/s", 3.2),
            ("rainfall", "mm", 0.4),
            ("noise_level", "dB", 55.0),
            ("battery", "%", 64.0),
        ),
        52.09,
        5.12,
    ),
    "air-2": (
        "south",
        (("pm2_5", "ug/m3", 22.0), ("noise_level", "dB", 61.0), ("battery", "%", 15.0)),
        52.08,
        5.13,
    ),
    "traffic-1": ("north", (("vehicle_count", "1", 40.0),), 52.091, 5.121),
    "park-1": ("south", (("parking_occupancy", "%", 70.0),), 52.081, 5.131),
    "bin-1": ("south", (("fill_level", "%", 55.0),), 52.082, 5.132),
    "water-1": ("north", (("water_level", "cm", 120.0),), 52.093, 5.125),
    "water-2": ("south", (("water_level", "m", 1.3),), 52.083, 5.135),
}
WINDOWS = {"1m": timedelta(minutes=1), "15m": timedelta(minutes=15), "1h": timedelta(hours=1)}


def grafana_time(moment: datetime) -> str:
    """How Grafana's InfluxDB data source writes a time macro into Flux (RFC 3339, nanos)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def regex_value(values: list[str]) -> str:
    """Grafana's ``${var:regex}`` formatting of a multi-value selection."""
    escaped = [re.sub(r"([\\^$.|?*+()\[\]{}/-])", r"\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


BUCKETS = {INFLUX_UID: INFLUX.raw_bucket, INFLUX_AGG_UID: INFLUX.aggregate_bucket}


def substitute(query: str, variables: dict[str, list[str]], datasource_uid: str) -> str:
    """The Flux text Grafana would send for the given variable selection and data source."""
    text = query.replace("v.defaultBucket", f'"{BUCKETS[datasource_uid]}"')
    for name, values in variables.items():
        text = text.replace(f"${{{name}:regex}}", regex_value(values))
        text = text.replace(f"${{{name}}}", values[0])
    text = text.replace("v.timeRangeStart", grafana_time(START))
    text = text.replace("v.timeRangeStop", grafana_time(NOW + timedelta(minutes=1)))
    text = text.replace("v.windowPeriod", "1m0s")
    assert not re.search(r"\$\{|\$__", text), f"unsubstituted Grafana variable in:\n{text}"
    return text


def points(tenant: str) -> Iterator[tuple[str, Point]]:
    """(bucket, point) pairs of the fixture: readings, aggregates and alerts."""
    for sensor, (district, quantities, lat, lon) in SENSORS.items():
        for quantity, unit, base in quantities:
            for step in range(36):  # every 5 minutes over the last 3 hours
                at = NOW - timedelta(minutes=5 * step + 2)
                flags = "stuck" if step % 7 == 3 else ("gap,unregistered" if step == 5 else "")
                yield (
                    INFLUX.raw_bucket,
                    (
                        Point("reading")
                        .tag("tenant", tenant)
                        .tag("sensor_id", sensor)
                        .tag("quantity", quantity)
                        .field("value", base + (step % 5) * 0.5)
                        .field("unit", unit)
                        .field("source_format", "json")
                        .field("message_id", f"{sensor}-{quantity}-{step}")
                        .field("received_at", grafana_time(at + timedelta(seconds=3)))
                        .field("quality_flags", flags)
                        .field("lat", lat)
                        .field("lon", lon)
                        .time(at, WritePrecision.NS)
                    ),
                )
            for window, size in WINDOWS.items():
                for k in range(4):
                    start = NOW - size * (k + 1)
                    start -= timedelta(seconds=start.timestamp() % size.total_seconds())
                    for scope, tag, subject in (
                        ("sensor", "sensor_id", sensor),
                        ("district", "district", district),
                    ):
                        yield (
                            INFLUX.aggregate_bucket,
                            (
                                Point("aggregate")
                                .tag("tenant", tenant)
                                .tag("scope", scope)
                                .tag(tag, subject)
                                .tag("quantity", quantity)
                                .tag("window", window)
                                .field("count", 3 + k)
                                .field("mean", base + k)
                                .field("min", base - 1.0)
                                .field("max", base + 2.0 + k)
                                .field("last", base + 0.5)
                                .field("unit", unit)
                                .time(start, WritePrecision.NS)
                            ),
                        )
    alerts = (
        ("air-2", "pm2_5", "pm2_5_high", "open", timedelta(hours=2), None, 22.0),
        ("water-2", "water_level", "stale", "open", timedelta(minutes=40), None, 1.3),
        (
            "air-1",
            "noise_level",
            "noise_high",
            "closed",
            timedelta(hours=3),
            timedelta(hours=2),
            70.0,
        ),
    )
    for sensor, quantity, rule, state, ago, ended_ago, value in alerts:
        started = NOW - ago
        yield (
            INFLUX.aggregate_bucket,
            (
                Point("alert")
                .tag("tenant", tenant)
                .tag("sensor_id", sensor)
                .tag("rule", rule)
                .tag("quantity", quantity)
                .field("state", state)
                .field("started_at", grafana_time(started))
                .field("ended_at", "" if ended_ago is None else grafana_time(NOW - ended_ago))
                .field("value", value)
                .field("message", f"{rule} on {sensor}")
                .time(started, WritePrecision.NS)
            ),
        )


@pytest.fixture(scope="module")
def client() -> Iterator[InfluxDBClient]:
    with InfluxDBClient(
        url=INFLUX.url, token=INFLUX.token.get_secret_value(), org=INFLUX.org, timeout=30_000
    ) as influx:
        yield influx


@pytest.fixture(scope="module")
def tenant(client: InfluxDBClient) -> str:
    name = unique("dash")
    writer = client.write_api(write_options=SYNCHRONOUS)
    by_bucket: dict[str, list[Point]] = {}
    for bucket, point in points(name):
        by_bucket.setdefault(bucket, []).append(point)
    for bucket, batch in by_bucket.items():
        writer.write(bucket=bucket, org=INFLUX.org, record=batch)
    return name


def selection(tenant: str) -> dict[str, list[str]]:
    """What a user picked on the boards: one tenant, two districts, two sensors..."""
    return {
        "tenant": [tenant],
        "district": list(DISTRICTS),
        "sensor": ["air-1", "air-2"],
        "quantity": ["pm2_5"],
        "window": ["15m"],
    }


def run(client: InfluxDBClient, flux: str) -> list[dict[str, Any]]:
    tables = client.query_api().query(flux, org=INFLUX.org)
    return [record.values for table in tables for record in table.records]


def influx_queries() -> list[tuple[str, str, str, str]]:
    """(board uid, where, data source uid, Flux) of every panel target and query variable."""
    out: list[tuple[str, str, str, str]] = []
    for board in BOARDS:
        data = board_json(board)
        for variable in data["templating"]["list"]:
            if variable["type"] == "query":
                where = f"variable {variable['name']}"
                out.append((board.uid, where, variable["datasource"]["uid"], variable["query"]))
        for panel in data["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["type"] == "influxdb":
                    where = f"panel {panel['title']} {target['refId']}"
                    out.append((board.uid, where, target["datasource"]["uid"], target["query"]))
    return out


def prometheus_queries() -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for board in BOARDS:
        for panel in board_json(board)["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["type"] == "prometheus":
                    out.append((board.uid, panel["title"], target["expr"]))
    return out


INFLUX_QUERIES = influx_queries()
PROM_QUERIES = prometheus_queries()


def test_every_board_is_covered() -> None:
    covered = {q[0] for q in INFLUX_QUERIES} | {q[0] for q in PROM_QUERIES}
    assert covered == {board.uid for board in BOARDS}
    assert len(INFLUX_QUERIES) >= 40 and len(PROM_QUERIES) >= 8


@pytest.mark.parametrize(
    ("uid", "where", "datasource", "flux"),
    INFLUX_QUERIES,
    ids=[f"{q[0]}: {q[1]}" for q in INFLUX_QUERIES],
)
def test_flux_query_returns_data(
    client: InfluxDBClient, tenant: str, uid: str, where: str, datasource: str, flux: str
) -> None:
    rows = run(client, substitute(flux, selection(tenant), datasource))
    assert rows, f"{uid} / {where} returned no data"


def test_variables_offer_the_fixture_values(client: InfluxDBClient, tenant: str) -> None:
    data = board_json(next(b for b in BOARDS if b.uid == "urbanpulse-experiment"))
    variables = {v["name"]: v for v in data["templating"]["list"]}

    def options(name: str) -> list[str]:
        variable = variables[name]
        query = substitute(variable["query"], selection(tenant), variable["datasource"]["uid"])
        rows = run(client, query)
        return [str(row["_value"]) for row in rows]

    assert tenant in options("tenant")
    assert options("district") == ["north", "south"]
    assert options("sensor") == ["air-1", "air-2"]
    assert "vehicle_count" in options("quantity") and "pm2_5" in options("quantity")


def test_city_overview_shows_positions_and_the_open_alerts(
    client: InfluxDBClient, tenant: str
) -> None:
    data = board_json(next(b for b in BOARDS if b.uid == "urbanpulse-city-overview"))
    by_title = {
        p["title"]: substitute(
            p["targets"][0]["query"], selection(tenant), p["targets"][0]["datasource"]["uid"]
        )
        for p in data["panels"]
    }
    located = run(client, by_title["Sensors and their latest values"])
    assert {row["sensor_id"] for row in located} == set(SENSORS)
    assert all(isinstance(row["lat"], float) and isinstance(row["lon"], float) for row in located)
    open_alerts = run(client, by_title["Alerts open now"])
    assert sorted(row["rule"] for row in open_alerts) == ["pm2_5_high", "stale"]
    # the closed noise episode is not counted
    assert [row["state"] for row in run(client, by_title["Open alerts"])] == [2]


@pytest.mark.parametrize(
    ("uid", "title", "expr"), PROM_QUERIES, ids=[f"{u}: {t}" for u, t, _ in PROM_QUERIES]
)
def test_promql_parses(uid: str, title: str, expr: str) -> None:
    text = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
    assert "$" not in text, f"unknown Grafana variable in {expr}"
    promql_parser.parse(text)  # raises ValueError on a syntax error


def test_promql_check_rejects_a_broken_expression() -> None:
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(urbanpulse_ingest_readings_total[1m])")


def test_ingest_metrics_used_by_the_boards_exist() -> None:
    stats = Stats(received=3, readings=2, acked=2)
    stats.dead_letters["undecodable"] += 1
    metrics = IngestMetrics(stats, lambda: 1)
    metrics.ack_latency.observe(0.02)
    exposed = generate_latest(metrics.registry).decode()
    names = set(re.findall(r"^(urbanpulse_ingest_\w+?)(?:\{| )", exposed, re.MULTILINE))
    used = {
        name for _, _, expr in PROM_QUERIES for name in re.findall(r"urbanpulse_ingest_\w+", expr)
    }
    assert used, "the boards use no ingest metric"
    # histograms expose _bucket/_sum/_count series, counters _total
    missing = sorted(used - names)
    assert missing == [], (
        f"ingest metrics the boards use but the ingestor does not expose: {missing}"
    )
