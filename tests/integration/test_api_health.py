"""/livez and /readyz against the real InfluxDB and Kafka: ready when both answer, one Kafka
admin client for the life of the app, and a Kafka that is gone makes it unready only while
the live feed is on."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from tests.support import free_port
from urbanpulse.settings import ApiSettings, KafkaSettings, Settings

ADMIN = "health-admin-key-0123456789"


def _client(**api: object) -> TestClient:
    settings = Settings(api=ApiSettings(api_keys=[f"{ADMIN}:admin"], **api))  # type: ignore[arg-type]
    return TestClient(create_app(settings))


def test_ready_when_influxdb_and_kafka_answer_with_one_admin_client() -> None:
    client = _client(ready_cache_s=0)
    readiness = client.app.state.context.readiness  # type: ignore[attr-defined]
    for _ in range(5):
        answer = client.get("/readyz", headers={"X-API-Key": ADMIN})
        assert answer.status_code == 200, answer.text
        dependencies = answer.json()["dependencies"]
        assert set(dependencies) == {"influxdb", "kafka"}
        assert all(d["ok"] for d in dependencies.values()), dependencies
    admin = readiness.kafka._admin
    assert admin is not None
    client.get("/readyz")
    assert readiness.kafka._admin is admin  # reused, not one per call
    assert client.get("/livez").json() == {"status": "ok"}
    assert client.get("/health").json() == {"status": "ok"}


def test_a_kafka_that_is_gone_matters_only_while_the_live_feed_is_on() -> None:
    gone = KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}")
    with_feed = TestClient(create_app(Settings(kafka=gone)))
    assert with_feed.get("/readyz").status_code == 503
    without = TestClient(create_app(Settings(kafka=gone, api=ApiSettings(stream_enabled=False))))
    assert without.get("/readyz").status_code == 200  # InfluxDB answers; Kafka not needed
