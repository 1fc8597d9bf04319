"""Reading the dead-letter topic of a span from the real Kafka: all, capped, or nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from confluent_kafka import Producer

from tests.support import unique
from urbanpulse.deadletter_reader import read_letters
from urbanpulse.kafka import ensure_topics
from urbanpulse.model import DeadLetter
from urbanpulse.settings import Settings


def letter(n: int) -> DeadLetter:
    return DeadLetter(
        reason="invalid_json",
        detail=f"letter {n}",
        stage="ingest",
        topic=f"urbanpulse/town/s-{n}/json",
        payload_b64="",
        received_at=datetime.now(UTC),
    )


def test_letters_since_a_moment_all_or_capped_and_unreadable_ones_counted() -> None:
    kafka = Settings().kafka.model_copy(
        update={"deadletter_topic": unique("it-letters"), "partitions": 2}
    )
    ensure_topics(kafka, [kafka.deadletter_topic])
    before = datetime.now(UTC) - timedelta(seconds=1)
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    for n in range(30):
        producer.produce(kafka.deadletter_topic, letter(n).to_bytes(), key=str(n).encode())
    producer.produce(kafka.deadletter_topic, b"not a letter")
    assert producer.flush(30) == 0

    everything = read_letters(kafka, before, limit=1000, group=unique("it-letters"))
    assert not everything.truncated and len(everything.letters) == 31
    assert sorted(x.detail for x in everything.letters if x.stage == "ingest") == sorted(
        f"letter {n}" for n in range(30)
    )
    (unreadable,) = [x for x in everything.letters if x.stage == "unknown"]
    assert unreadable.reason == "unreadable"

    capped = read_letters(kafka, before, limit=10, group=unique("it-letters"))
    assert capped.truncated and len(capped.letters) == 10

    time.sleep(0.01)
    later = read_letters(kafka, datetime.now(UTC) + timedelta(seconds=5), limit=10, group="x")
    assert (later.letters, later.truncated) == ([], False)
    missing = kafka.model_copy(update={"deadletter_topic": unique("it-no-such-topic")})
    assert read_letters(missing, before, limit=10, group="x").letters == []
