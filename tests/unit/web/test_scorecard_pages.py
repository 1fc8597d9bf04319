"""The overview's scorecard and the experiments page over a fake store: what they show."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from api.web.scorecard import pick_day, scorecard_document
from tests.unit.api.fakes import NOW, FakeStore
from tests.unit.api.kpi_samples import indicators
from tests.unit.api.routes.test_experiments import REGISTRY, SCHOOL, hours
from urbanpulse.settings import KafkaSettings, ScoreWeights, Settings, StreamsSettings, WebSettings

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def day_of(days_ago: int, **kw: object) -> object:
    return indicators(day=0, **kw).model_copy(
        update={
            "start": TODAY - timedelta(days=days_ago),
            "end": TODAY - timedelta(days=days_ago - 1),
        }
    )


def stored() -> list:
    town = [
        day_of(1, subject="town", scope="tenant", score=71.5),
        day_of(0, subject="town", scope="tenant", score=99.0).model_copy(
            update={"complete": False}
        ),
    ]
    sensors = [
        day_of(1, subject="n1", score=95.0),
        day_of(1, subject="n2", score=40.0, completeness=0.4),
        day_of(1, subject="secret", score=10.0),
        day_of(1, subject="n3", score=60.0),
    ]
    return town + sensors


def client_of(registry: Path, store: FakeStore) -> TestClient:
    settings = Settings(
        streams=StreamsSettings(registry_path=str(registry)),
        web=WebSettings(tenant="town"),
        kafka=KafkaSettings(bootstrap="127.0.0.1:9"),
    )
    return TestClient(create_app(settings, store=store, clock=lambda: NOW))


def test_the_shown_day_is_the_last_complete_one() -> None:
    days = [d for d in stored() if d.scope == "tenant"]
    chosen = pick_day(days)
    assert chosen is not None and chosen.score == 71.5
    assert pick_day(days[1:]) is days[1] and pick_day([]) is None


def test_the_document_names_no_hidden_sensor_and_ranks_the_worst_first() -> None:
    town, *_ = stored()
    sensors = [d for d in stored() if d.scope == "sensor"]
    document = scorecard_document(town, sensors, ScoreWeights(), frozenset({("town", "secret")}))
    assert [w["sensor_id"] for w in document["worst"]] == ["n2", "n3", "n1"]
    assert (
        document["score"] == 71.5
        and document["day"] == (TODAY - timedelta(days=1)).date().isoformat()
    )
    weights = {c["name"]: c["weight"] for c in document["components"]}
    assert weights == {"completeness": 0.5, "uptime": 0.2 / 0.6, "freshness": 0.1 / 0.6}
    assert scorecard_document(town, sensors, ScoreWeights(), None)["worst"] == []


def test_the_overview_shows_the_score_its_parts_and_the_weakest_sensors(tmp_path: Path) -> None:
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    page = client_of(registry, FakeStore(indicators=stored())).get("/overview").text
    section = page[page.index('id="scorecard"') : page.index('id="domains-title"')]
    assert 'data-score="71.5"' in section and ">72<" in section
    assert re.findall(r'data-component="(\w+)"', section) == ["completeness", "uptime", "freshness"]
    assert re.findall(r'data-sensor="([\w-]+)"', section) == ["n2", "n3", "n1"]
    assert "secret" not in section
    empty = client_of(registry, FakeStore()).get("/overview", params={"lang": "de"}).text
    assert "Noch keine Kennzahlen" in empty


def test_the_experiments_page_says_what_the_data_show(tmp_path: Path) -> None:
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    client = client_of(registry, FakeStore(hours=hours()))
    assert "No experiment is defined" in client.get("/experiments").text
    admin = Settings(
        api={"api_keys": ["admin-key-0123456789abcdef:admin"]},
        streams=StreamsSettings(registry_path=str(registry)),
    )
    with TestClient(create_app(admin, store=FakeStore())) as writer:
        posted = writer.post(
            "/v1/admin/experiments",
            json=SCHOOL,
            headers={"X-API-Key": "admin-key-0123456789abcdef"},
        )
        assert posted.status_code == 201
    page = client.get("/experiments", params={"tenant": "town"}).text
    article = page[page.index('id="experiment-school-street"') :]
    assert 'data-verdict="incomplete"' in article and "Treat with care" in article
    assert "95 % confidence interval from -" in article and "Welch" in article
    assert re.findall(r'data-side="(\w+)"', article) == [
        "treated_before",
        "treated_after",
        "control_before",
        "control_after",
    ]
    assert "/v1/experiments/school-street" in article
    spanish = client.get("/experiments", params={"tenant": "town", "lang": "es"}).text
    assert "Con precaución" in spanish and "prueba t de Welch" in spanish
