"""The default town, accelerated, through the running platform: every domain becomes queryable.

Runs ``urbanpulse simulate`` (all six payload formats, faults on) against ingest, worker and
API processes with topics of their own, then reads the API. It also compares what the ground
truth says was injected with the quality flags the API shows, and writes that comparison to
``detection.json`` in the test's folder (printed too): the stream checks are still growing, so
that part reports rather than asserts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from simulators.models import model_values
from simulators.outputs import registry_yaml, tenant_map
from simulators.scenario import DEFAULT_SCENARIO, Device, build_fleet, load_scenario
from tests.e2e.test_pipeline import Platform, api_ready
from tests.support import REPO, unique, wait_for

DOMAINS = ("air", "noise", "traffic", "parking", "weather", "waste", "water")
QUANTITY_OF = {
    "air": "pm2_5",
    "noise": "noise_level",
    "traffic": "vehicle_count",
    "parking": "occupancy",
    "weather": "temperature",
    "waste": "fill_level",
    "water": "water_level",
}
FAULTS = ["spike=0.02", "stuck=0.01", "malformed=0.02", "duplicate=0.02", "clock_skew=0.01"]


@pytest.fixture
def town(tmp_path: Path) -> Iterator[tuple[Platform, list[Device], dict[str, str]]]:
    tenant = unique("sim")
    scenario = load_scenario(DEFAULT_SCENARIO)
    scenario = scenario.model_validate(
        scenario.model_dump()
        | {"tenant": tenant, "network_servers": {"tts_tenant": "ttn"}}  # app ids from the tenant
    )
    fleet = build_fleet(scenario)
    mapping = tenant_map(scenario, fleet)
    registry = tmp_path / "registry.yaml"
    registry.write_text(registry_yaml(scenario, fleet))
    env = {
        "URBANPULSE_MQTT__TOPICS": json.dumps(
            [
                f"urbanpulse/{tenant}/+/+",
                f"v3/{scenario.tts_topic_application()}/devices/+/up",
                f"application/{scenario.chirpstack_application()}/device/+/event/up",
            ]
        ),
        "URBANPULSE_DECODERS__TENANT_BY_APPLICATION": json.dumps(mapping),
        "URBANPULSE_STREAMS__REGISTRY_PATH": str(registry),
    }
    running = Platform(tenant, tmp_path, env)
    running.start()
    try:
        yield running, fleet, env
    finally:
        running.stop()


def observations(
    platform: Platform, sensor_id: str, start: datetime, end: datetime
) -> list[dict[str, object]]:
    platform.check_alive()
    body = platform.get(
        f"/v1/sensors/{sensor_id}/observations",
        tenant=platform.tenant,
        limit="10000",
        **{"from": start.isoformat(), "to": end.isoformat()},
    )
    return body["data"]  # type: ignore[return-value]


@pytest.mark.timeout(420)
def test_default_town_reaches_the_api_in_every_domain(
    town: tuple[Platform, list[Device], dict[str, str]], tmp_path: Path
) -> None:
    platform, fleet, env = town
    wait_for(lambda: api_ready(platform), 90, "the API to report every dependency healthy")
    truth, summary_file = tmp_path / "ground-truth.jsonl", tmp_path / "summary.json"
    started = datetime.now(UTC)
    command = [
        sys.executable,
        "-m",
        "urbanpulse.cli",
        "simulate",
        "--tenant",
        platform.tenant,
        "--mode",
        "accelerated",
        "--duration",
        "3h",
        "--speed",
        "540",
        "--ground-truth",
        str(truth),
        "--summary-out",
        str(summary_file),
    ]
    for fault in FAULTS:
        command += ["--fault", fault]
    done = subprocess.run(
        command, cwd=REPO, env=platform.env | env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(summary_file.read_text())
    assert set(summary["by_format"]) == {
        "json",
        "senml",
        "lpp",
        "sensorcommunity",
        "tts",
        "chirpstack",
    }
    assert summary["faults"]
    start, end = started - timedelta(hours=4), datetime.now(UTC) + timedelta(minutes=5)
    city = load_scenario(DEFAULT_SCENARIO).city()
    records = [json.loads(line) for line in truth.read_text().splitlines()]
    touched = {  # readings whose value or time a fault changed: not compared with the models
        (sensor_id, r["observed_at"])
        for r in records
        if r["kind"] == "fault"
        for sensor_id in r["sensor_ids"]
    } | {
        (sensor_id, _shifted(r["observed_at"], r["detail"]["skew_s"]))
        for r in records
        if r["fault"] == "clock_skew"
        for sensor_id in r["sensor_ids"]
    }

    # every domain: readings of its main quantity, with the values the models give
    for domain in DOMAINS:
        devices = [d for d in fleet if d.kind.domain == domain]

        def found(
            devices: list[Device] = devices, domain: str = domain
        ) -> list[tuple[Device, dict[str, object]]] | None:
            rows = []
            for device in devices:
                for sensor_id in device.platform_sensor_ids():
                    rows += [(device, o) for o in observations(platform, sensor_id, start, end)]
            wanted = [r for r in rows if r[1]["quantity"] == QUANTITY_OF[domain]]
            return rows if len(wanted) >= 5 else None

        rows = wait_for(found, 120, f"readings of the {domain} domain in the API")
        matches = total = 0
        for device, row in rows:
            quantity = str(row["quantity"])
            when = datetime.fromisoformat(str(row["time"]).replace("Z", "+00:00"))
            model = model_values(device.kind, city, device.site, when)
            if quantity in model and (row["sensor_id"], row["time"]) not in touched:
                total += 1
                ok = abs(float(row["value"]) - model[quantity]) <= 0.51  # type: ignore[arg-type]
                matches += ok
                if not ok and total - matches < 5:
                    print("differs from the model:", device.format, row, model[quantity])
        assert total and matches / total > 0.97, (domain, matches, total)

    # personal data never reaches the API; people counters publish nothing open
    listed = platform.get("/v1/sensors", tenant=platform.tenant)["data"]
    quantities = {q["quantity"] for s in listed for q in s["quantities"]}  # type: ignore[union-attr,index]
    assert "people_count" not in quantities
    assert set(QUANTITY_OF.values()) <= quantities

    report = detection(platform, fleet, truth, start, end)
    (tmp_path / "detection.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    assert report["malformed"]["stored"] == 0


def _shifted(stamp: str, seconds: float) -> str:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(seconds=seconds)
    return moment.isoformat().replace("+00:00", "Z")


def detection(
    platform: Platform, fleet: list[Device], truth: Path, start: datetime, end: datetime
) -> dict[str, dict[str, int]]:
    """Per fault: how many the log expected the platform to flag, and how many it did."""
    records = [json.loads(line) for line in truth.read_text().splitlines()]
    by_sensor: dict[str, list[dict[str, object]]] = {}
    for device in fleet:
        for sensor_id in device.platform_sensor_ids():
            by_sensor[sensor_id] = observations(platform, sensor_id, start, end)
    out: dict[str, dict[str, int]] = defaultdict(Counter)  # type: ignore[arg-type]
    for record in records:
        if record["kind"] != "fault":
            continue
        fault, expect = record["fault"], record["expect"]
        result = out[fault]
        result["injected"] += 1
        flag = expect.split(":", 1)[1].split(" ")[0] if expect.startswith("flag:") else None
        when = record["observed_at"]
        if fault == "clock_skew":
            when = _shifted(when, record["detail"]["skew_s"])
        rows = [
            o
            for s in record["sensor_ids"]
            for o in by_sensor.get(s, [])
            if o["time"] == when
            and (record["quantity"] is None or o["quantity"] == record["quantity"])
        ]
        result["stored"] += bool(rows)
        if flag:
            result["expected_flag"] += 1
            result["flagged"] += any(flag in o.get("quality_flags", []) for o in rows)  # type: ignore[operator]
    return {k: dict(v) for k, v in out.items()}
