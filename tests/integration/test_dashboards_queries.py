"""Every panel of the boards shows data for a simulated town, asked as Grafana would ask.

The data is the bundled default town (``simulators/scenarios/town.yaml``: every sensor kind,
every payload format, its faults and incidents) over the last hours, sent through the platform's
own code: each message as the simulator would publish it is decoded by the ingestor's routing
(``ingest.routing.decode_message``) and handed, as the Kafka values ingest writes, to the
stream worker's adapter (``streams.app.StreamWorker``: the pure pipeline, point building and
the real InfluxDB writer), batch by batch in the order and at the times it would arrive live,
with the worker's stale check between batches. Only Kafka is left out (its topics and state
tables are in-memory stand-ins), which ``test_streams_worker.py`` covers. Then the indicator
job runs once (``urbanpulse kpis``), for the Pilot scorecard board. No quantity name is
written here: what the boards find is what the platform stores.

Each panel's Flux is then run on the real InfluxDB with what Grafana substitutes: the board's
time range as RFC 3339 time literals, ``v.windowPeriod``, ``v.defaultBucket`` as the bucket
of the query's data source, and each ``${variable}`` / ``${variable:regex}`` as Grafana formats
the selection, the selection being options the variable's own query offers. A panel that
returns nothing fails the test with its board and title.

Prometheus panels have no Prometheus here (``test_dashboards_prometheus.py`` has one): their
PromQL is parsed (promql-parser) and the ingest metric names checked against the ingestor.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import promql_parser
import pytest
from influxdb_client import InfluxDBClient
from prometheus_client import generate_latest

from dashboards import flux
from dashboards.boards import BOARDS
from dashboards.datasources import INFLUX_AGG_UID, INFLUX_UID
from dashboards.render import board_json
from ingest.metrics import IngestMetrics
from ingest.stats import Stats
from simulators.outputs import registry_yaml, tenant_map
from simulators.scenario import DEFAULT_SCENARIO, Device, Scenario, build_fleet, load_scenario
from streams.kpis.job import KpiJob
from streams.kpis.store import KpiStore
from tests.integration.simulated_town import deliver_town
from tests.support import unique
from urbanpulse.deadletter_reader import LetterScan, read_letters
from urbanpulse.kafka import ensure_topics
from urbanpulse.registry import RegistryFile
from urbanpulse.settings import DecoderSettings, Settings, StreamsSettings

NOW = datetime.now(UTC).replace(microsecond=0)
HISTORY = timedelta(hours=3)  # the town has been running this long when the boards look
BOARD_UIDS = {board.uid for board in BOARDS}


@dataclass(frozen=True)
class Town:
    """The simulated town as the platform stored it."""

    scenario: Scenario
    fleet: list[Device]
    settings: Settings

    @property
    def tenant(self) -> str:
        """The town's tenant of its own."""
        return self.scenario.tenant


async def run_platform(town: Town) -> None:
    """Send the town's last ``HISTORY`` through ingest decoding and the stream worker."""
    # As in real time (what `make up` runs): Sensor.Community pushes carry no time.
    await deliver_town(
        town.settings, town.scenario, town.fleet, NOW - HISTORY, NOW, timestamps=False
    )


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Town:
    scenario = load_scenario(DEFAULT_SCENARIO)
    scenario = scenario.model_validate(  # a tenant of its own; applications named after it
        scenario.model_dump() | {"tenant": unique("dash"), "network_servers": {"tts_tenant": "ttn"}}
    )
    fleet = build_fleet(scenario)
    registry: Path = tmp_path_factory.mktemp("town") / "registry.yaml"
    registry.write_text(registry_yaml(scenario, fleet), encoding="utf-8")
    settings = Settings(
        decoders=DecoderSettings(tenant_by_application=tenant_map(scenario, fleet)),
        streams=StreamsSettings(registry_path=str(registry)),
        kafka=Settings().kafka.model_copy(
            update={"deadletter_topic": unique("it-dash-deadletter"), "partitions": 1}
        ),
    )
    simulated = Town(scenario=scenario, fleet=fleet, settings=settings)
    asyncio.run(run_platform(simulated))
    run_indicator_job(simulated)
    return simulated


def run_indicator_job(town: Town) -> None:
    """``urbanpulse kpis`` once, as ``urbanpulse up`` runs it: the Pilot scorecard board's
    ``kpi`` points (dead letters from a topic of the test's own, which has none)."""
    settings = town.settings
    ensure_topics(settings.kafka, [settings.kafka.deadletter_topic])
    registry = RegistryFile(settings.streams.registry_path, settings.streams.registry_reload_s)
    store = KpiStore(settings.influx)

    def letters(since: datetime) -> LetterScan:
        return read_letters(settings.kafka, since, limit=1000, group=unique("it-dash-kpis"))

    try:
        summary = KpiJob(settings, store, letters, registry.current).run(NOW, tenant=town.tenant)
        assert summary.points > 0
    finally:
        store.close()


@pytest.fixture(scope="module")
def client(town: Town) -> Iterator[InfluxDBClient]:
    influx = town.settings.influx
    with InfluxDBClient(
        url=influx.url, token=influx.token.get_secret_value(), org=influx.org, timeout=60_000
    ) as connection:
        yield connection


# ---- what Grafana sends ----------------------------------------------------------------------


def grafana_time(moment: datetime) -> str:
    """How Grafana's InfluxDB data source writes a time macro into Flux (RFC 3339, nanos)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def relative(expression: str, now: datetime) -> datetime:
    """A Grafana relative time such as ``now`` or ``now-24h``."""
    found = re.fullmatch(r"now(?:-(\d+)([mhd]))?", expression)
    assert found, f"unsupported time {expression!r}"
    if not found.group(1):
        return now
    unit = {"m": "minutes", "h": "hours", "d": "days"}[found.group(2)]
    return now - timedelta(**{unit: int(found.group(1))})


def regex_value(values: list[str]) -> str:
    """Grafana's ``${var:regex}`` formatting of a multi-value selection."""
    escaped = [re.sub(r"([\\^$.|?*+()\[\]{}/-])", r"\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


@dataclass(frozen=True)
class Target:
    """One Flux query of a board: a panel's target or a variable's options."""

    board: dict[str, Any]
    where: str
    datasource: str
    query: str


def substitute(town: Town, target: Target, selection: dict[str, list[str]]) -> str:
    """The Flux text Grafana sends for a target, the board's time range and a selection."""
    buckets = {INFLUX_UID: town.settings.influx.raw_bucket}
    buckets[INFLUX_AGG_UID] = town.settings.influx.aggregate_bucket
    now = datetime.now(UTC)
    span = target.board["time"]
    text = target.query.replace("v.defaultBucket", f'"{buckets[target.datasource]}"')
    for name, values in selection.items():
        text = text.replace(f"${{{name}:regex}}", regex_value(values))
        text = text.replace(f"${{{name}}}", values[0])
    text = text.replace("v.timeRangeStart", grafana_time(relative(span["from"], now)))
    text = text.replace("v.timeRangeStop", grafana_time(relative(span["to"], now)))
    text = text.replace("v.windowPeriod", "1m0s")  # 24 h over a panel ~1,000 pixels wide
    assert not re.search(r"\$\{|\$__", text), f"unsubstituted Grafana variable in:\n{text}"
    return text


def run(client: InfluxDBClient, flux: str) -> list[dict[str, Any]]:
    tables = client.query_api().query(flux)
    return [record.values for table in tables for record in table.records]


def panels_of(uid: str) -> list[Target]:
    """The Flux targets of one board's panels."""
    data = board_json(next(b for b in BOARDS if b.uid == uid))
    return [
        Target(data, f"panel {p['title']!r} {t['refId']}", t["datasource"]["uid"], t["query"])
        for p in data["panels"]
        for t in p.get("targets", [])
        if t["datasource"]["type"] == "influxdb"
    ]


def options(
    town: Town, client: InfluxDBClient, uid: str, name: str, selection: dict[str, list[str]]
) -> list[str]:
    """The options a board's variable offers, given the variables selected before it."""
    data = board_json(next(b for b in BOARDS if b.uid == uid))
    variable = next(v for v in data["templating"]["list"] if v["name"] == name)
    if variable["type"] == "custom":
        return [o.strip() for o in variable["query"].split(",")]
    target = Target(data, name, variable["datasource"]["uid"], variable["query"])
    return [str(row["_value"]) for row in run(client, substitute(town, target, selection))]


def choose(
    town: Town, client: InfluxDBClient, uid: str, picks: dict[str, str] | None = None
) -> dict[str, list[str]]:
    """What a user selects on a board, each an option its variable offers.

    The town's tenant, ``picks`` (else the saved or first option) of a single-value variable,
    every option of a multi-value one; asked in the board's order, as Grafana refreshes them.
    """
    data = board_json(next(b for b in BOARDS if b.uid == uid))
    wanted = {"tenant": town.tenant} | (picks or {})
    selection: dict[str, list[str]] = {}
    for variable in data["templating"]["list"]:
        name = variable["name"]
        offered = options(town, client, uid, name, selection)
        assert offered, f"{uid}: variable {name} offers nothing"
        if variable.get("multi"):
            selection[name] = offered
        else:
            value = wanted.get(name, variable.get("current", {}).get("value") or offered[0])
            assert value in offered, f"{uid}: variable {name} does not offer {value!r}"
            selection[name] = [value]
    return selection


# ---- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("uid", sorted(BOARD_UIDS))
def test_every_panel_returns_data(town: Town, client: InfluxDBClient, uid: str) -> None:
    selection = choose(town, client, uid)
    panels = panels_of(uid)
    assert panels
    empty = [p.where for p in panels if not run(client, substitute(town, p, selection))]
    assert empty == [], f"{uid}: no data in {empty} for the simulated town ({selection})"


def test_the_experiment_board_shows_every_quantity_it_offers(
    town: Town, client: InfluxDBClient
) -> None:
    uid = "urbanpulse-experiment"
    panels = panels_of(uid)
    quantities = options(town, client, uid, "quantity", {"tenant": [town.tenant]})
    assert len(quantities) > 10, quantities
    # every quantity at the board's default window, every window for the first quantity
    picks: list[tuple[str, str | None]] = [(quantity, None) for quantity in quantities]
    picks += [(quantities[0], size) for size in flux.WINDOWS]
    empty = []
    for quantity, size in picks:
        chosen = {"quantity": quantity} | ({"window": size} if size else {})
        selection = choose(town, client, uid, chosen)
        empty += [
            (quantity, selection["window"][0], p.where)
            for p in panels
            if not run(client, substitute(town, p, selection))
        ]
    assert empty == []


def test_the_city_overview_shows_every_sensor_and_the_incidents(
    town: Town, client: InfluxDBClient
) -> None:
    uid = "urbanpulse-city-overview"
    selection = choose(town, client, uid)
    panels = panels_of(uid)
    by_title = {p.where.split("'")[1]: substitute(town, p, selection) for p in panels}
    located = run(client, by_title["Sensors and their latest values"])
    assert {row["sensor_id"] for row in located} == {
        sensor_id for device in town.fleet for sensor_id in device.platform_sensor_ids()
    }
    assert all(isinstance(row["lat"], float) and isinstance(row["lon"], float) for row in located)
    # the town's incidents keep their alerts open; faults may open and close others
    incidents = town.scenario.incidents
    expected = {(d, "low_battery") for d in incidents.flat_battery}
    expected |= {(d, "stale") for d in incidents.silent}
    assert expected
    rows = run(client, by_title["Alerts open now"])
    open_now = {
        (device.device_id, row["rule"])
        for row in rows
        for device in town.fleet
        if row["sensor_id"] in device.platform_sensor_ids()
    }
    assert expected <= open_now
    count = run(client, by_title["Open alerts"])
    assert [row["state"] for row in count] == [len(rows)]


def test_the_variables_offer_the_town(town: Town, client: InfluxDBClient) -> None:
    uid = "urbanpulse-experiment"
    selection = choose(town, client, uid, {"quantity": "pm2_5"})
    assert selection["district"] == sorted(d.id for d in town.scenario.districts)
    assert selection["sensor"] == sorted(
        d.sensor_id for d in town.fleet if d.kind.name in ("air_quality", "particulates")
    )
    quantities = options(town, client, uid, "quantity", {"tenant": [town.tenant]})
    simulated = {q.quantity for d in town.fleet for q in d.kind.quantities}
    assert {"pm2_5", "occupancy", "precipitation", "battery_level"} <= set(quantities)
    # personal data is dropped at ingest, so never offered
    assert "people_count" in simulated and "people_count" not in quantities


# (board uid, panel title, PromQL) of every Prometheus target; test_dashboards_prometheus.py
# runs the same list against a real Prometheus.
PROM_QUERIES = [
    (board.uid, panel["title"], target["expr"])
    for board in BOARDS
    for panel in board_json(board)["panels"]
    for target in panel.get("targets", [])
    if target["datasource"]["type"] == "prometheus"
]


def test_every_board_has_its_queries_checked() -> None:
    flux_boards = {uid for uid in BOARD_UIDS if panels_of(uid)}
    prom_boards = {uid for uid, _, _ in PROM_QUERIES}
    assert flux_boards | prom_boards == BOARD_UIDS
    assert len(PROM_QUERIES) >= 8


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
    used = {name for _, _, e in PROM_QUERIES for name in re.findall(r"urbanpulse_ingest_\w+", e)}
    assert used, "the boards use no ingest metric"
    # histograms expose _bucket/_sum/_count series, counters _total
    missing = sorted(used - names)
    assert missing == [], (
        f"ingest metrics the boards use but the ingestor does not expose: {missing}"
    )


def test_the_flagged_share_is_flagged_readings_over_all_readings(
    town: Town, client: InfluxDBClient
) -> None:
    uid = "urbanpulse-sensor-health"
    selection = choose(town, client, uid)
    panel = next(p for p in panels_of(uid) if "'Readings with quality flags'" in p.where)
    [share] = run(client, substitute(town, panel, selection))
    # The same range, asked plainly: every stored reading's value and flags.
    plain = Target(
        panel.board,
        "plain",
        INFLUX_UID,
        flux.raw(None, ("value", "quality_flags")) + '\n  |> keep(columns: ["_field", "_value"])',
    )
    rows = run(client, substitute(town, plain, selection))
    readings = sum(1 for row in rows if row["_field"] == "value")
    flagged = sum(1 for row in rows if row["_field"] == "quality_flags" and row["_value"])
    assert 0 < flagged < readings  # the town's faults flag some of its readings, not all
    assert share["_value"] == pytest.approx(100 * flagged / readings)
