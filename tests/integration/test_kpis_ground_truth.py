"""The indicator job against the simulator's ground truth: exact where the truth is exact.

A simulated town (the bundled default town: every sensor kind and payload format) runs three
hours of yesterday with sensor failures — one silent from an hour in, one losing 30 % of its
reports, one stuck, one sending values beyond their physical range, a flat battery — and 1 % of
messages malformed, through the ingestor's decoding, the stream worker and the real InfluxDB
(tests/integration/simulated_town.py); the dead letters of ingest and the worker go to a real
Kafka topic of the test's own. Each message reaches ingest a few seconds after its
observation, a fixed delay per device. Then ``urbanpulse kpis``' job runs for that day, as of
the end of the three hours.

What the test knows independently of the job: every message the simulator sent (and what
the platform must make of it), every device's reporting times, and the ground-truth log.
From those it counts, per sensor, the reports and readings stored, the reports expected,
the latencies, the dead letters; and from the log alone the failed sensors' losses, stuck
flags and gap flags. Those must equal the stored indicators exactly. Approximate by design:
the latency percentiles of districts and tenants (merged sketches, within 1 %). Not checked
against the truth: flag shares of sensors without injected faults (values that repeat by
nature, such as a battery level or a free parking space, are flagged stuck by the worker
and not written in the log).
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer

from simulators.engine import ticks
from simulators.faults import FaultRecord, Outgoing
from simulators.outputs import registry_yaml, tenant_map
from simulators.scenario import (
    DEFAULT_SCENARIO,
    FAULTS,
    Device,
    Scenario,
    build_fleet,
    load_scenario,
)
from streams.kpis.job import KpiJob
from streams.kpis.sketch import nearest_rank
from streams.kpis.store import KpiStore
from tests.integration.simulated_town import Delivered, deliver_town
from tests.support import unique
from urbanpulse.deadletter_reader import LetterScan, read_letters
from urbanpulse.kafka import ensure_topics
from urbanpulse.kpi import Indicators, Period
from urbanpulse.registry import RegistryFile
from urbanpulse.scorecard import rank_sensors
from urbanpulse.settings import DecoderSettings, Settings, StreamsSettings

DAY = (datetime.now(UTC) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
START, END = DAY + timedelta(hours=8), DAY + timedelta(hours=11)
FAILURES = {
    "silent": {"noise-004": "1h"},
    "intermittent": {"noise-003": {"rate": 0.3, "from": "30m"}},
    "stuck": {"noise-002": "1h"},
    "garbage": {"noise-001": "2h"},
    "flat_battery": ["bin-002"],
}
BROKEN = {"noise-001", "noise-002", "noise-003", "noise-004"}


def delay_s(device: Device) -> float:
    """When a device's messages reach ingest: a fixed delay per device, 1 to 29 s."""
    return 1 + 7 * (sum(map(ord, device.device_id)) % 5)


@dataclass(frozen=True)
class Town:
    """The simulated town, what it sent, and the indicators the job stored of it."""

    scenario: Scenario
    fleet: list[Device]
    settings: Settings
    delivered: Delivered
    stored: dict[tuple[str, str], Indicators]  # (scope, subject) → the day's indicators
    week: dict[tuple[str, str], Indicators]  # the week's
    second_run: dict[tuple[str, str], Indicators]  # the day's, computed again

    def sensor(self, sensor_id: str) -> Indicators:
        return self.stored[("sensor", sensor_id)]


def the_scenario() -> Scenario:
    base = load_scenario(DEFAULT_SCENARIO)
    faults = dict.fromkeys(FAULTS, 0.0) | {"malformed": 0.01}
    return base.model_validate(
        base.model_dump()
        | {
            "tenant": unique("kpi"),
            "network_servers": {"tts_tenant": "ttn"},
            "faults": faults,
            "incidents": FAILURES,
        }
    )


def publish(settings: Settings, delivered: Delivered) -> None:
    """Put the dead letters of ingest and the worker on the test's own Kafka topic."""
    ensure_topics(settings.kafka, [settings.kafka.deadletter_topic])
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap})
    for letter in delivered.letters:
        producer.produce(settings.kafka.deadletter_topic, letter.to_bytes())
    assert producer.flush(30) == 0


Stored = dict[tuple[str, str], Indicators]  # (scope, subject) → indicators


def run_job(settings: Settings, tenant: str) -> tuple[Stored, Stored]:
    """Run the job for the day, as of the end of the run; the day's and the week's indicators."""
    store = KpiStore(settings.influx)
    registry = RegistryFile(settings.streams.registry_path, settings.streams.registry_reload_s)

    def letters(since: datetime) -> LetterScan:
        return read_letters(settings.kafka, since, limit=100_000, group=unique("it-kpis"))

    def stored(start: datetime, days: int, period: Period) -> Stored:
        found = store.stored(
            start, start + timedelta(days=days), period=period, scope=None, tenant=tenant
        )
        return {(k[1], k[2]): results[-1].indicators for k, results in found.items()}

    try:
        summary = KpiJob(settings, store, letters, registry.current).run(
            END, since=DAY.date(), tenant=tenant
        )
        assert summary.days == [DAY.date()] and summary.letters > 0
        monday = DAY - timedelta(days=DAY.weekday())
        return stored(DAY, 1, "day"), stored(monday, 7, "week")
    finally:
        store.close()


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Town:
    scenario = the_scenario()
    fleet = build_fleet(scenario)
    registry: Path = tmp_path_factory.mktemp("town") / "registry.yaml"
    registry.write_text(registry_yaml(scenario, fleet), encoding="utf-8")
    settings = Settings(
        decoders=DecoderSettings(tenant_by_application=tenant_map(scenario, fleet)),
        streams=StreamsSettings(registry_path=str(registry)),
        kafka=Settings().kafka.model_copy(
            update={"deadletter_topic": unique("it-kpi-deadletter"), "partitions": 2}
        ),
    )
    devices = {d.device_id: d for d in fleet}

    def arrival(item: Outgoing) -> datetime:
        assert item.message is not None
        return item.due + timedelta(seconds=delay_s(devices[item.message.device_id]))

    delivered = asyncio.run(deliver_town(settings, scenario, fleet, START, END, arrival=arrival))
    publish(settings, delivered)
    day, week = run_job(settings, scenario.tenant)
    again, _ = run_job(settings, scenario.tenant)
    return Town(
        scenario=scenario,
        fleet=fleet,
        settings=settings,
        delivered=delivered,
        stored=day,
        week=week,
        second_run=again,
    )


# ---- what the simulator says the platform must have stored -----------------------------------


@dataclass
class Truth:
    """Per platform sensor id: what the simulator sent that the platform must store."""

    report_times: dict[str, set[datetime]]
    readings: Counter[str]
    latencies: dict[str, list[float]]
    letters: Counter[str]  # dead letters naming the sensor


def truth_of(town: Town) -> Truth:
    truth = Truth(defaultdict(set), Counter(), defaultdict(list), Counter())
    devices = {d.device_id: d for d in town.fleet}
    for item in town.delivered.items:
        if item.message is None:
            continue
        device = devices[item.message.device_id]
        if item.message.dead_letter is not None:  # refused by ingest: one letter, no readings
            truth.letters[device.sensor_id] += 1  # an LPP device is one sensor too (issue 14)
            continue
        garbage = {q for r in item.records if r.fault == "garbage" for q in r.detail["sent"]}
        received = town.delivered.received[id(item)]
        for reading in item.message.readings:
            if reading.quantity in garbage:  # refused by the worker: one letter per reading
                truth.letters[reading.sensor_id] += 1
                continue
            observed = reading.observed_at or received
            truth.report_times[reading.sensor_id].add(observed)
            truth.readings[reading.sensor_id] += 1
            truth.latencies[reading.sensor_id].append((received - observed).total_seconds())
    return truth


def grid(town: Town) -> dict[str, list[datetime]]:
    """Every platform sensor's reporting times in the run (its device's schedule)."""
    out: dict[str, list[datetime]] = defaultdict(list)
    for at, device in ticks(town.fleet, town.scenario.seed, START, END):
        for sensor_id in device.platform_sensor_ids():
            out[sensor_id].append(at)
    return out


def log(town: Town, fault: str, device: str) -> Iterator[FaultRecord]:
    for item in town.delivered.items:
        for record in item.records:
            if record.fault == fault and record.device_id == device:
                yield record


# ---- the tests -------------------------------------------------------------------------------


def test_every_sensor_has_exactly_what_the_simulator_sent(town: Town) -> None:
    truth, schedule = truth_of(town), grid(town)
    sensors = {s for d in town.fleet for s in d.platform_sensor_ids()}
    assert {subject for scope, subject in town.stored if scope == "sensor"} == sensors
    for sensor_id in sorted(sensors):
        ind = town.sensor(sensor_id)
        times = truth.report_times[sensor_id]
        expected = [t for t in schedule[sensor_id] if times and t >= min(times)]
        assert (ind.reports, ind.readings, ind.slots) == (
            len(times),
            truth.readings[sensor_id],
            len(times),
        ), sensor_id
        assert ind.expected == max(1, len(expected)), sensor_id
        assert ind.completeness == round(len(times) / ind.expected, 6), sensor_id
        assert ind.uptime == ind.completeness, sensor_id
        assert ind.dead_letters == truth.letters[sensor_id], sensor_id
        assert ind.interval_source == "registry" and not ind.interval_inferred
        if times:
            ordered = sorted(truth.latencies[sensor_id])
            assert ind.latency_p50_s == round(nearest_rank(ordered, 0.5), 3), sensor_id
            assert ind.latency_p95_s == round(nearest_rank(ordered, 0.95), 3), sensor_id
            assert ind.last_reading_at == max(times)
            assert ind.since_last_s == (END - max(times)).total_seconds()


def test_the_failed_sensors_match_the_ground_truth_log(town: Town) -> None:
    schedule = grid(town)

    def ticks_of(device: str) -> int:
        return len(schedule[device])

    silent = town.sensor("noise-004")
    (stop,) = log(town, "silent", "noise-004")
    before = sum(1 for t in schedule["noise-004"] if t < stop.observed_at)
    sent = before - len(list(log(town, "malformed", "noise-004")))  # 1 % are refused at ingest
    assert (silent.reports, silent.expected) == (sent, ticks_of("noise-004"))
    assert silent.completeness == round(sent / ticks_of("noise-004"), 6)
    assert silent.components["freshness"] == 0.0

    lossy = town.sensor("noise-003")
    lost = [r for r in log(town, "intermittent", "noise-003") if r.expect == "absent"]
    malformed = list(log(town, "malformed", "noise-003"))
    assert lost and lossy.reports == ticks_of("noise-003") - len(lost) - len(malformed)
    assert lossy.uptime == round(lossy.reports / ticks_of("noise-003"), 6)
    gaps = [r for r in log(town, "intermittent", "noise-003") if r.expect == "flag:gap"]
    per_report = lossy.readings // lossy.reports  # every report: noise_level and signal
    assert lossy.flag_counts.get("gap", 0) == len(gaps) * per_report
    assert lossy.flag_shares.get("gap", 0.0) == round(len(gaps) * per_report / lossy.readings, 6)

    stuck = town.sensor("noise-002")
    flagged = sum(len(r.detail.get("flagged", [])) for r in log(town, "stuck", "noise-002"))
    assert flagged > 0 and stuck.flag_counts == {"stuck": flagged}
    assert stuck.flag_shares == {"stuck": round(flagged / stuck.readings, 6)}
    malformed = list(log(town, "malformed", "noise-002"))
    assert stuck.reports == ticks_of("noise-002") - len(malformed)

    garbage = town.sensor("noise-001")
    refused = sum(len(r.detail["sent"]) for r in log(town, "garbage", "noise-001"))
    malformed = list(log(town, "malformed", "noise-001"))
    assert refused > 0 and garbage.dead_letters == refused + len(malformed)
    assert garbage.dead_letter_reasons["out_of_range"] == refused
    assert garbage.reports == ticks_of("noise-001") - refused - len(malformed)

    flat = town.sensor("bin-002")
    assert (flat.battery_pct, flat.battery_low_sensors, flat.components["battery"]) == (8.0, 1, 0)


def test_districts_and_the_tenant_pool_their_sensors(town: Town) -> None:
    truth = truth_of(town)
    tenant = town.stored[("tenant", town.scenario.tenant)]
    sensors = [i for (scope, _), i in town.stored.items() if scope == "sensor"]
    assert tenant.sensors == len(sensors) == sum(len(d.platform_sensor_ids()) for d in town.fleet)
    assert tenant.reports == sum(i.reports for i in sensors)
    assert tenant.expected == sum(i.expected for i in sensors)
    total_letters = sum(truth.letters.values())
    assert tenant.dead_letters == total_letters == len(town.delivered.letters)
    assert tenant.score == pytest.approx(
        sum(i.score or 0 for i in sensors) / len(sensors), abs=0.01
    )
    all_latencies = sorted(x for values in truth.latencies.values() for x in values)
    exact = nearest_rank(all_latencies, 0.95)
    assert tenant.latency_p95_s == pytest.approx(exact, rel=0.01)  # a merged sketch: within 1 %
    for district in {d.district for d in town.fleet}:
        pooled = town.stored[("district", district)]
        members = [i for i in sensors if i.district == district]
        assert pooled.sensors == len(members)
        assert pooled.reports == sum(i.reports for i in members)
        assert pooled.dead_letters == sum(i.dead_letters for i in members)


def test_the_scorecard_ranks_the_broken_sensors_lowest(town: Town) -> None:
    ranked = rank_sensors(town.stored.values(), limit=None)
    worst = {r.sensor_id for r in ranked[: len(BROKEN)]}
    assert worst == BROKEN, [(r.sensor_id, r.score, r.weakest) for r in ranked[:8]]
    flat = next(r for r in ranked if r.sensor_id == "bin-002")
    assert flat.score < 100 and flat.indicators.components["battery"] == 0


def test_a_second_run_overwrites_the_same_points(town: Town) -> None:
    assert town.second_run.keys() == town.stored.keys()
    for key, ind in town.stored.items():
        again = town.second_run[key]
        assert again.model_dump(exclude={"evaluated_at"}) == ind.model_dump(
            exclude={"evaluated_at"}
        ), key


def test_the_week_so_far_is_the_day(town: Town) -> None:
    assert town.week.keys() == town.stored.keys()
    for key, day in town.stored.items():
        week = town.week[key]
        assert (week.period, week.expected, week.reports, week.readings) == (
            "week",
            day.expected,
            day.reports,
            day.readings,
        ), key
        assert (week.dead_letters, week.flag_counts) == (day.dead_letters, day.flag_counts), key
        if day.latency_p95_s is not None and week.latency_p95_s is not None:
            assert math.isclose(week.latency_p95_s, day.latency_p95_s, rel_tol=0.01, abs_tol=1e-3)
