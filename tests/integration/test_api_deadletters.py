"""``/v1/deadletters`` on the real Kafka: a scan cut at ``web.deadletter_scan_max`` says so."""

from __future__ import annotations

from datetime import UTC, datetime

from confluent_kafka import Producer
from fastapi.testclient import TestClient

from api.app import create_app
from tests.support import unique
from urbanpulse.kafka import ensure_topics
from urbanpulse.model import DeadLetter
from urbanpulse.settings import Settings, WebSettings


def test_a_scan_cut_at_its_limit_says_truncated() -> None:
    """Twenty letters on one partition arrive in one consume; the limit keeps five. The API's
    old reader cut the list after the partition had reached its end and answered
    ``truncated: false`` with five of twenty counted."""
    tenant = unique("letters")
    kafka = Settings().kafka.model_copy(
        update={"deadletter_topic": unique("it-api-letters"), "partitions": 1}
    )
    ensure_topics(kafka, [kafka.deadletter_topic])
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    for n in range(20):
        letter = DeadLetter(
            reason="invalid_json",
            detail=f"letter {n}",
            stage="ingest",
            topic=f"urbanpulse/{tenant}/s-{n}/json",
            payload_b64="",
            received_at=datetime.now(UTC),
        )
        producer.produce(kafka.deadletter_topic, letter.to_bytes())
    assert producer.flush(30) == 0
    settings = Settings(kafka=kafka, web=WebSettings(deadletter_scan_max=5, deadletter_cache_s=0))
    with TestClient(create_app(settings)) as client:
        capped = client.get("/v1/deadletters", params={"tenant": tenant}).json()
    assert (capped["total"], capped["truncated"]) == (5, True)
    whole = Settings(kafka=kafka, web=WebSettings(deadletter_scan_max=100, deadletter_cache_s=0))
    with TestClient(create_app(whole)) as client:
        everything = client.get("/v1/deadletters", params={"tenant": tenant}).json()
    assert (everything["total"], everything["truncated"]) == (20, False)
