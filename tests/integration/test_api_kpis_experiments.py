"""/v1/kpis and /v1/experiments over what a simulated town stored, against the ground truth.

A town of twelve noise sensors in two districts and two battery-powered waste bins (one with a
flat battery) runs four whole days up to today's midnight through ingest decoding, the stream
worker and the real InfluxDB (tests/integration/simulated_town.py). Halfway through, the
simulator's intervention makes the ``school`` district 3 dB quieter; ``market`` is its control.
The indicator job then runs for those days. The API, over the real InfluxDB, must

* answer ``/v1/kpis`` with exactly the stored indicators, battery levels only for an admin key;
* answer the experiment a city defines through ``/v1/admin/experiments`` with an interval that
  holds the effect the simulator's ground truth states (and not 0), with the readings, expected
  readings, completeness and side means the simulator's messages make.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import fmean
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from simulators.faults import FaultRecord
from simulators.outputs import registry_yaml
from simulators.scenario import Device, Scenario, build_fleet
from streams.kpis.job import KpiJob
from streams.kpis.store import KpiStore
from tests.integration.simulated_town import Delivered, deliver_town
from tests.support import unique
from urbanpulse.deadletter_reader import LetterScan, read_letters
from urbanpulse.kafka import ensure_topics
from urbanpulse.kpi import Indicators
from urbanpulse.registry import RegistryFile
from urbanpulse.settings import ApiSettings, Settings, StreamsSettings

KEY = "kpi-admin-key-0123456789"
ADMIN = {"X-API-Key": KEY}
END = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
START = END - timedelta(days=4)
CHANGE = END - timedelta(days=2)


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Town:
    """The town, what it sent, its settings and the indicators the job stored."""

    scenario: Scenario
    fleet: list[Device]
    settings: Settings
    delivered: Delivered
    stored: dict[tuple[str, str, datetime], Indicators]  # (scope, subject, day) → indicators

    @property
    def tenant(self) -> str:
        return self.scenario.tenant


def the_scenario() -> Scenario:
    return Scenario.model_validate(
        {
            "name": "Quiet street",
            "tenant": unique("exp"),
            "seed": 11,
            "centre": {"lat": 52.0, "lon": 5.0},
            "districts": [
                {"id": "school", "lat": 52.0, "lon": 5.0},
                {"id": "market", "lat": 52.01, "lon": 5.01},
            ],
            "sensors": {"noise": {"count": 12, "interval": "15m"}, "waste": {"count": 2}},
            "incidents": {"flat_battery": ["bin-001"]},
            "interventions": [
                {
                    "name": "school-street",
                    "quantity": "noise_level",
                    "change": -3,
                    "from": rfc3339(CHANGE),
                    "district": "school",
                    "control_district": "market",
                }
            ],
        }
    )


def run_job(settings: Settings, tenant: str) -> dict[tuple[str, str, datetime], Indicators]:
    store = KpiStore(settings.influx)
    registry = RegistryFile(settings.streams.registry_path, settings.streams.registry_reload_s)

    def letters(since: datetime) -> LetterScan:
        return read_letters(settings.kafka, since, limit=1000, group=unique("it-kpis"))

    try:
        KpiJob(settings, store, letters, registry.current).run(
            END, since=START.date(), tenant=tenant
        )
        found = store.stored(
            START, END + timedelta(days=1), period="day", scope=None, tenant=tenant
        )
    finally:
        store.close()
    return {
        (key[1], key[2], result.indicators.start): result.indicators
        for key, results in found.items()
        for result in results
    }


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Town:
    scenario = the_scenario()
    fleet = build_fleet(scenario)
    registry: Path = tmp_path_factory.mktemp("town") / "registry.yaml"
    registry.write_text(registry_yaml(scenario, fleet), encoding="utf-8")
    settings = Settings(
        streams=StreamsSettings(registry_path=str(registry)),
        kafka=Settings().kafka.model_copy(
            update={"deadletter_topic": unique("it-exp-deadletter"), "partitions": 1}
        ),
        api=ApiSettings(api_keys=[f"{KEY}:admin"], rate_anonymous_per_s=0, rate_keyed_per_s=0),
    )
    ensure_topics(settings.kafka, [settings.kafka.deadletter_topic])
    delivered = asyncio.run(deliver_town(settings, scenario, fleet, START, END))
    stored = run_job(settings, scenario.tenant)
    return Town(scenario, fleet, settings, delivered, stored)


@pytest.fixture(scope="module")
def client(town: Town) -> Any:
    with TestClient(create_app(town.settings)) as test_client:
        yield test_client


# ---- /v1/kpis --------------------------------------------------------------------------------


def test_the_indicators_are_the_stored_ones_battery_only_for_an_admin(
    town: Town, client: TestClient
) -> None:
    params = {"tenant": town.tenant, "from": rfc3339(START), "to": rfc3339(END)}
    answer = client.get("/v1/kpis", params=params)
    assert answer.status_code == 200, answer.text
    rows = answer.json()["data"]
    sensors = {s for d in town.fleet for s in d.platform_sensor_ids()}
    assert len(sensors) == 14
    assert {(r["subject"], r["start"]) for r in rows} == {
        (s, rfc3339(START + timedelta(days=d))) for s in sensors for d in range(4)
    }
    for row in rows:
        stored = town.stored[("sensor", row["subject"], datetime.fromisoformat(row["start"]))]
        expected = json.loads(stored.summary_json())
        expected.pop("battery_pct", None)
        assert {k: v for k, v in row.items() if k not in ("tenant", "scope", "subject", "period",
                "start")} == expected  # fmt: skip
    admin = client.get("/v1/kpis", params=params | {"sensor_id": "bin-001"}, headers=ADMIN)
    flat = admin.json()["data"]
    assert [r["battery_pct"] for r in flat] == [8.0] * 4  # the simulator's flat battery
    tenant_rows = client.get("/v1/kpis", params=params | {"scope": "tenant"}).json()["data"]
    assert [r["reports"] for r in tenant_rows] == [
        town.stored[("tenant", town.tenant, START + timedelta(days=d))].reports for d in range(4)
    ]
    school = client.get("/v1/kpis", params=params | {"district": "school"}).json()["data"]
    in_school = {d.sensor_id for d in town.fleet if d.district == "school"}
    assert {r["subject"] for r in school} == in_school and in_school


# ---- /v1/experiments -------------------------------------------------------------------------


def truth_records(town: Town) -> list[FaultRecord]:
    return [r for item in town.delivered.items for r in item.records if r.kind == "intervention"]


def truth_hours(town: Town) -> dict[tuple[str, datetime], list[float]]:
    """Every noise reading the simulator sent, by sensor and hour of observation."""
    hours: dict[tuple[str, datetime], list[float]] = defaultdict(list)
    for item in town.delivered.items:
        if item.message is None:
            continue
        for reading in item.message.readings:
            if reading.quantity == "noise_level":
                assert reading.observed_at is not None
                hour = reading.observed_at.replace(minute=0, second=0, microsecond=0)
                hours[(reading.sensor_id, hour)].append(reading.value)
    return hours


@pytest.fixture(scope="module")
def experiment(town: Town, client: TestClient) -> str:
    """The school street, defined as a city would, through the admin API; its id."""
    definition = {
        "id": f"school-street-{town.tenant}",
        "name": "School street",
        "tenant": town.tenant,
        "quantity": "noise_level",
        "treated": {"district": "school"},
        "control": {"district": "market"},
        "before": {"from": rfc3339(START), "to": rfc3339(CHANGE)},
        "after": {"from": rfc3339(CHANGE), "to": rfc3339(END)},
    }
    created = client.post("/v1/admin/experiments", json=definition, headers=ADMIN)
    assert created.status_code == 201, created.text
    return str(definition["id"])


def test_the_experiment_finds_the_effect_the_simulator_put_in(
    town: Town, client: TestClient, experiment: str
) -> None:
    (record,) = truth_records(town)
    answer = client.get(f"/v1/experiments/{experiment}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    change = record.detail["change"]
    assert change == -3.0 and body["low"] <= change <= body["high"], body
    assert not body["low"] <= 0.0 <= body["high"] and body["verdict"] == "effect"
    assert (body["design"], body["method"]) == ("difference_in_differences", "welch")
    assert body["treated"]["sensors"] == sorted(record.detail["treated"])
    assert body["control"]["sensors"] == sorted(record.detail["control"])
    hours = truth_hours(town)
    groups = {"treated": record.detail["treated"], "control": record.detail["control"]}
    for side in body["sides"]:
        group, when = side["name"].split()
        lo, hi = (START, CHANGE) if when == "before" else (CHANGE, END)
        mine = {k: v for k, v in hours.items() if k[0] in groups[group] and lo <= k[1] < hi}
        readings = sum(len(v) for v in mine.values())
        expected = len(groups[group]) * int((hi - lo).total_seconds()) // 900
        assert (side["values"], side["readings"], side["expected"]) == (
            len(mine),
            readings,
            expected,
        ), side["name"]
        assert side["completeness"] == round(readings / expected, 6) == 1.0
        assert side["mean"] == pytest.approx(fmean(fmean(v) for v in mine.values()), abs=1e-9)


# ---- the monthly report ----------------------------------------------------------------------


def test_the_monthly_report_of_the_simulated_days(
    town: Town, experiment: str, tmp_path: Path
) -> None:
    """``urbanpulse report`` as a pilot lead runs it, for the month of the town's last day."""
    month = (END - timedelta(days=1)).strftime("%Y-%m")
    env = os.environ | {
        "URBANPULSE_STREAMS__REGISTRY_PATH": town.settings.streams.registry_path,
        "URBANPULSE_LOG_LEVEL": "WARNING",
    }
    args = ["report", "--tenant", town.tenant, "--month", month, "--out", str(tmp_path)]
    ran = subprocess.run(
        [sys.executable, "-m", "urbanpulse.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    stem = f"{town.tenant}-{month}"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"report-{stem}.html", f"scorecard-{stem}.csv", f"worst-sensors-{stem}.csv",
         f"experiments-{stem}.csv"]
    )  # fmt: skip
    page = (tmp_path / f"report-{stem}.html").read_text(encoding="utf-8")
    assert not re.search(r"(?i)https?:|url\(|<script|<link|\ssrc=|\shref=", page)
    days = {
        day: ind
        for (scope, _, day), ind in town.stored.items()
        if scope == "tenant" and day.strftime("%Y-%m") == month
    }
    assert days

    def table(name: str) -> list[dict[str, str]]:
        text = (tmp_path / f"{name}-{stem}.csv").read_text(encoding="utf-8")
        return list(csv.DictReader(io.StringIO(text)))

    rows = table("scorecard")
    assert [(r["day"], float(r["score"]), int(r["reports"])) for r in rows] == [
        (day.date().isoformat(), ind.score, ind.reports) for day, ind in sorted(days.items())
    ]
    mean = fmean(ind.score for ind in days.values() if ind.score is not None)
    assert f'id="month-score">{mean:.0f}<' in page
    worst = table("worst-sensors")
    scores = defaultdict(list)
    for (scope, subject, day), ind in town.stored.items():
        if scope == "sensor" and day.strftime("%Y-%m") == month and ind.score is not None:
            scores[subject].append(ind.score)
    lowest = min(scores, key=lambda s: (fmean(scores[s]), s))
    assert worst[0]["sensor_id"] == lowest and len(worst) == min(10, len(scores))
    assert float(worst[0]["score"]) == pytest.approx(fmean(scores[lowest]))
    sides = table("experiments")
    assert {s["id"] for s in sides} == {experiment} and len(sides) == 4
    assert all(float(s["low"]) <= -3.0 <= float(s["high"]) for s in sides)
    assert "School street" in page and "The data show a change" in page
