"""/v1/kpis over a fake store: filters, splicing, the open and the admin view, CSV, errors."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.kpi_answer import district_needles, in_districts, row_json, without_battery
from api.kpi_filters import KpiRow
from tests.unit.api.fakes import NOW, FakeStore
from tests.unit.api.kpi_samples import indicators
from urbanpulse.settings import ApiSettings, KafkaSettings, Settings, StreamsSettings

KEY = "admin-key-0123456789abcdef"
ADMIN = {"X-API-Key": KEY}
READ_KEY = "read-key-0123456789abcdef"  # a key of the read scope: a higher rate, nothing more
REGISTRY = """
sensors:
  - {tenant: town, sensor_id: air-1, district: centrum}
  - {tenant: town, sensor_id: noise-9, district: oost, privacy: restricted}
"""
SPAN = {"from": "2026-11-20T00:00:00Z", "to": "2026-11-23T00:00:00Z"}


def stored() -> list:
    rows = [indicators("air-1", d, score=80 + d) for d in range(3)]
    rows += [indicators("air-2", d, district="oost", battery=None) for d in range(3)]
    rows += [indicators("noise-9", d, district="oost") for d in range(3)]
    rows += [indicators("other", 0, tenant="elsewhere")]
    rows += [indicators("centrum", d, scope="district") for d in range(3)]
    rows += [indicators("town", d, scope="tenant", score=88.5) for d in range(3)]
    rows += [indicators("air-1", 0, period="week")]
    return rows


@pytest.fixture
def store() -> FakeStore:
    return FakeStore(indicators=stored())


@pytest.fixture
def client(store: FakeStore, tmp_path: Path) -> TestClient:
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    settings = Settings(
        api=ApiSettings(api_keys=[f"{KEY}:admin", READ_KEY], rate_anonymous_per_s=0),
        streams=StreamsSettings(registry_path=str(registry)),
        kafka=KafkaSettings(bootstrap="127.0.0.1:9"),
    )
    return TestClient(create_app(settings, store=store, clock=lambda: NOW))


def test_the_open_view_leaves_out_battery_and_unpublished_sensors(client: TestClient) -> None:
    answer = client.get("/v1/kpis", params={"tenant": "town"} | SPAN)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["access"] == "open" and body["weights"]["completeness"] == 0.3
    assert [(r["subject"], r["start"]) for r in body["data"]] == [
        (s, f"2026-11-{20 + d}T00:00:00Z") for d in range(3) for s in ("air-1", "air-2")
    ]
    assert all("battery_pct" not in r for r in body["data"])
    first = body["data"][0]
    assert first["tenant"] == "town" and first["scope"] == "sensor" and first["period"] == "day"
    assert (first["score"], first["completeness"], first["district"]) == (80, 0.95, "centrum")
    assert answer.headers["cache-control"].startswith("public") and "etag" in answer.headers
    assert "X-API-Key" in answer.headers["vary"]


def test_an_admin_key_sees_battery_and_every_sensor(client: TestClient) -> None:
    read = client.get("/v1/kpis", params={"tenant": "town"} | SPAN, headers={"X-API-Key": READ_KEY})
    assert read.json()["access"] == "open"  # a read key is no admin key
    assert all("battery_pct" not in r for r in read.json()["data"])
    body = client.get("/v1/kpis", params={"tenant": "town"} | SPAN, headers=ADMIN).json()
    assert body["access"] == "admin"
    assert {r["subject"] for r in body["data"]} == {"air-1", "air-2", "noise-9"}
    batteries = {r["subject"]: r.get("battery_pct") for r in body["data"]}
    assert batteries == {"air-1": 55.0, "air-2": None, "noise-9": 55.0}


def test_the_answer_is_the_stored_summary_with_its_tags(store: FakeStore) -> None:
    """Splicing gives exactly what parsing and dumping would, battery left out or not."""
    for ind in store.indicators:
        row = KpiRow(
            tenant=ind.tenant,
            scope=ind.scope,
            subject=ind.subject,
            period=ind.period,
            time="2026-11-20T00:00:00Z",
            document=ind.summary_json(),
        )
        head = {"tenant": ind.tenant, "scope": ind.scope, "subject": ind.subject}
        head |= {"period": ind.period, "start": "2026-11-20T00:00:00Z"}
        whole = head | json.loads(ind.summary_json())
        assert json.loads(row_json(row, battery=True)) == whole
        whole.pop("battery_pct", None)
        assert json.loads(row_json(row, battery=False)) == whole
    odd = indicators('a"b\\c', district='ce"n,tr"um')
    assert json.loads(without_battery(odd.summary_json()))["district"] == 'ce"n,tr"um'
    assert in_districts(odd.summary_json(), district_needles(['ce"n,tr"um']))
    assert not in_districts(odd.summary_json(), district_needles(["ce"]))


def test_scopes_periods_districts_and_sensors(client: TestClient, store: FakeStore) -> None:
    def subjects(**params: object) -> list[str]:
        answer = client.get("/v1/kpis", params={"tenant": "town"} | SPAN | params)
        assert answer.status_code == 200, answer.text
        return [r["subject"] for r in answer.json()["data"]]

    assert subjects(scope="tenant") == ["town"] * 3
    assert subjects(scope="district", district="centrum") == ["centrum"] * 3
    assert subjects(district="oost") == ["air-2"] * 3  # noise-9 is not published
    assert subjects(sensor_id=["air-1", "nobody"]) == ["air-1"] * 3
    assert subjects(period="week", **{"from": "2026-11-16T00:00:00Z"}) == ["air-1"]
    asked = store.kpi_filters[-2]
    assert (asked.scope, asked.subjects, asked.tenant) == ("sensor", ("air-1", "nobody"), "town")
    everyone = client.get("/v1/kpis", params={"scope": "tenant"} | SPAN).json()["data"]
    assert {r["tenant"] for r in everyone} == {"town"}  # the other tenant had no tenant row


def test_the_default_range_is_the_last_30_days(client: TestClient, store: FakeStore) -> None:
    client.get("/v1/kpis", params={"tenant": "town"})
    asked = store.kpi_filters[-1]
    assert (asked.stop, asked.stop - asked.start) == (NOW, timedelta(days=30))
    assert (asked.scope, asked.period, asked.document) == ("sensor", "day", "summary")


def test_csv_has_a_column_per_indicator(client: TestClient) -> None:
    answer = client.get("/v1/kpis", params={"tenant": "town", "format": "csv"} | SPAN)
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert answer.headers["content-type"].startswith("text/csv") and len(rows) == 6
    assert "battery_pct" not in rows[0] and rows[0]["flag_shares"] == "gap:0.0023"
    assert (rows[0]["subject"], rows[0]["score"], rows[0]["start"]) == (
        "air-1",
        "80.0",
        "2026-11-20T00:00:00Z",
    )
    admin = client.get("/v1/kpis", params={"tenant": "town", "format": "csv"} | SPAN, headers=ADMIN)
    assert {r["battery_pct"] for r in csv.DictReader(io.StringIO(admin.text))} == {"55.0", ""}
    assert admin.headers["cache-control"] == "private, no-cache"


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"scope": "district", "sensor_id": "a"}, 400, "needs scope=sensor"),
        ({}, 400, "scope=sensor needs a 'tenant'"),
        ({"scope": "tenant", "district": "a"}, 400, "scope=sensor or scope=district"),
        ({"scope": "county"}, 400, "scope"),
        ({"period": "month"}, 400, "period"),
        ({"tenant": "t", "from": "2026-01-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, 400, "92"),
        (
            {"tenant": "t", "from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
            400,
            "before",
        ),
        ({"from": "yesterday"}, 400, "RFC 3339"),
    ],
)
def test_bad_queries_are_4xx_with_a_reason(
    client: TestClient, params: dict[str, str], status: int, message: str
) -> None:
    answer = client.get("/v1/kpis", params=params)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["detail"]


def test_weeks_and_other_scopes_may_span_a_year(client: TestClient) -> None:
    params = {"tenant": "town", "from": "2026-01-01T00:00:00Z", "to": "2026-11-30T00:00:00Z"}
    assert client.get("/v1/kpis", params=params | {"period": "week"}).status_code == 200
    assert client.get("/v1/kpis", params=params | {"scope": "tenant"}).status_code == 200


def test_an_unchanged_answer_is_a_304(client: TestClient) -> None:
    params = {"tenant": "town"} | SPAN
    first = client.get("/v1/kpis", params=params)
    again = client.get("/v1/kpis", params=params, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
