"""Parsing a batch of Kafka values into readings and dead letters (pure)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime

from urbanpulse.model import DeadLetter, Reading
from urbanpulse.wire import decode_record


@dataclass
class ParsedBatch:
    """Readings ready to store, and dead letters for values that are not readings."""

    readings: list[Reading] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


def parse_values(values: list[bytes], topic: str) -> ParsedBatch:
    """Parse Kafka values (batch records or single readings); a non-reading is a dead letter."""
    batch = ParsedBatch()
    for value in values:
        record = decode_record(value)
        batch.readings += record.readings
        for refused in record.refused:
            batch.dead_letters.append(
                streams_dead_letter(refused.value, topic, "invalid_reading", refused.reason)
            )
    return batch


def streams_dead_letter(value: bytes, topic: str, reason: str, detail: str) -> DeadLetter:
    """A dead letter raised by the stream worker, keeping the original bytes."""
    return DeadLetter(
        reason=reason,
        detail=detail[:1000],
        stage="streams",
        topic=topic,
        payload_b64=base64.b64encode(value).decode(),
        received_at=datetime.now(UTC),
    )
