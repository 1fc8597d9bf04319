"""Reads the dead letters written to Kafka since a moment (adapter; no consumer group commits).

Each read uses its own consumer, finds the first offset at or after ``since`` in every
partition (Kafka's message timestamps: when the letter was written), reads to the end the
topic had when the read began, and stops early at ``limit`` letters, saying so. A value that
is not a :class:`~urbanpulse.model.DeadLetter` is still returned, as reason ``unreadable``
of stage ``unknown``, so it is counted rather than lost. Blocking: run it in a thread from
async code. The indicator job and the API's ``/v1/deadletters`` both read with it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaError, TopicPartition
from pydantic import ValidationError

from urbanpulse.kafka import client_config
from urbanpulse.model import DeadLetter
from urbanpulse.settings import KafkaSettings

log = logging.getLogger(__name__)

POLL_S = 0.5


@dataclass(frozen=True, kw_only=True)
class LetterScan:
    """The letters one read found, and whether it stopped before the end."""

    letters: list[DeadLetter]
    truncated: bool


def read_letters(
    kafka: KafkaSettings, since: datetime, *, limit: int, group: str, timeout_s: float = 60.0
) -> LetterScan:
    """Every dead letter written since ``since`` (at most ``limit``; ``timeout_s`` in all)."""
    consumer = Consumer(
        client_config(kafka)
        | {
            "group.id": group,  # librdkafka wants one; nothing is ever committed
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "socket.timeout.ms": 10_000,
        }
    )
    try:
        return _scan(consumer, kafka.deadletter_topic, since, limit, timeout_s)
    finally:
        consumer.close()


def _scan(
    consumer: Consumer, topic: str, since: datetime, limit: int, timeout_s: float
) -> LetterScan:
    found = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        return LetterScan(letters=[], truncated=False)  # no such topic (yet): no letters
    since_ms = int(since.timestamp() * 1000)
    wanted = [TopicPartition(topic, p, since_ms) for p in sorted(found.partitions)]
    starts = consumer.offsets_for_times(wanted, timeout=10)
    ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in starts}
    todo = [tp for tp in starts if 0 <= tp.offset < ends[tp.partition]]  # -1: none since
    if not todo:
        return LetterScan(letters=[], truncated=False)
    consumer.assign(todo)
    remaining = {tp.partition: ends[tp.partition] for tp in todo}
    letters: list[DeadLetter] = []
    deadline = time.monotonic() + timeout_s
    while remaining and len(letters) < limit and time.monotonic() < deadline:
        for message in consumer.consume(500, timeout=POLL_S):
            partition = message.partition()
            if message.error() is not None:
                if message.error().code() == KafkaError._PARTITION_EOF:
                    remaining.pop(partition, None)
                continue
            if partition in remaining and message.offset() < remaining[partition]:
                letters.append(parse_letter(message.value(), message.timestamp()[1]))
                if message.offset() + 1 >= remaining[partition]:
                    del remaining[partition]
    # one consume may return more than the limit: what it cuts off is left unread too
    return LetterScan(letters=letters[:limit], truncated=bool(remaining) or len(letters) > limit)


def parse_letter(value: bytes | None, timestamp_ms: int) -> DeadLetter:
    """A letter from the topic; one that does not parse becomes ``unreadable`` (stage unknown)."""
    try:
        return DeadLetter.model_validate_json(value or b"")
    except ValidationError:
        log.warning("a dead letter that is not a DeadLetter: %r", (value or b"")[:200])
        return DeadLetter(
            reason="unreadable",
            detail="not a dead letter of this platform",
            stage="unknown",
            topic="",
            payload_b64="",
            received_at=datetime.fromtimestamp(timestamp_ms / 1000, UTC),
        )
