"""The Kafka records of a worker batch: split into runs of bounded size, parsed into readings
and dead letters (pure)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from urbanpulse.model import DeadLetter, Reading, by_sensor
from urbanpulse.wire import decode_record

T = TypeVar("T")


@dataclass
class ParsedBatch:
    """Readings in topic order, the partition of each sensor, and dead letters for the rest."""

    readings: list[Reading] = field(default_factory=list)
    partitions: dict[bytes, int] = field(default_factory=dict)  # sensor key → its partition
    dead_letters: list[DeadLetter] = field(default_factory=list)


def parse_records(values: list[tuple[int, bytes]], topic: str) -> ParsedBatch:
    """Parse (partition, value) records (batches or single readings, ``urbanpulse.wire``).

    A reading that breaks the model becomes a dead letter ``invalid_reading``; the rest of
    its record is kept.
    """
    batch = ParsedBatch()
    for partition, value in values:
        record = decode_record(value)
        batch.readings += record.readings
        for key in by_sensor(record.readings):
            batch.partitions[key] = partition
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


def split_by_size(items: Sequence[T], size: Callable[[T], int], limit: int) -> Iterator[list[T]]:
    """``items`` in order, as consecutive runs whose sizes add up to at most ``limit`` (an item
    bigger than that alone).

    A worker batch is a number of Kafka records, and a record of the ingestor holds up to
    1,000 readings: 100 records can be 100,000 readings, and the memory a batch needs while
    it is processed grows with its readings, not its records.
    """
    run: list[T] = []
    total = 0
    for item in items:
        n = size(item)
        if run and total + n > limit:
            yield run
            run, total = [], 0
        run.append(item)
        total += n
    if run:
        yield run
