"""Kafka records of a batch of messages: their readings grouped by partition (pure).

The ingestor decodes what the broker handed over, then writes ONE record per partition (and
more only when a record would be too large), not one per reading: Kafka, Faust and the worker
pay their per-record costs once per batch (issue 14). All readings of a sensor go to the
partition librdkafka's default partitioner picks for the sensor's key
(:func:`urbanpulse.wire.partition_of`), in arrival order, so per-sensor order is kept across
records and across ingestors. Each record lists the messages with a reading in it, so its one
delivery report can confirm each of them (:class:`ingest.acks.AckTracker` counts them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from urbanpulse.model import Reading
from urbanpulse.wire import MAX_RECORD_BYTES, MAX_RECORD_READINGS, encode_batch, partition_of

# Kafka refuses records over message.max.bytes (1 MB by default, in librdkafka and the broker).
# A record holds at most MAX_READINGS readings (about 300 kB of JSON) and, if its readings are
# unusually long, is halved until it is under MAX_BYTES: the bounds of every batch record.
MAX_READINGS = MAX_RECORD_READINGS
MAX_BYTES = MAX_RECORD_BYTES


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record to write: its partition, value, and the messages it confirms."""

    partition: int
    value: bytes
    readings: int
    tokens: tuple[int, ...]  # each message with a reading in it, once, in arrival order


@dataclass(slots=True)  # not frozen: one per MQTT message, and frozen is 3x slower to build
class Message:
    """A decoded message of the batch: its token and its readings, in order."""

    token: int
    readings: Sequence[Reading]


def plan_records(
    messages: Sequence[Message],
    partitions: int,
    *,
    max_readings: int = MAX_READINGS,
    max_bytes: int = MAX_BYTES,
) -> list[Record]:
    """The records holding the readings of ``messages`` (in arrival order), by partition."""
    placed: dict[int, list[tuple[int, Reading]]] = {}
    for message in messages:
        sensor: tuple[str, str] | None = None
        partition = 0
        for reading in message.readings:
            if sensor != (reading.tenant, reading.sensor_id):  # once per sensor of a message
                sensor = (reading.tenant, reading.sensor_id)
                partition = partition_of(reading.key, partitions)
            placed.setdefault(partition, []).append((message.token, reading))
    records: list[Record] = []
    for partition, items in placed.items():
        for start in range(0, len(items), max_readings):
            records += _fit(partition, items[start : start + max_readings], max_bytes)
    return records


def _fit(partition: int, items: list[tuple[int, Reading]], max_bytes: int) -> list[Record]:
    value = encode_batch([reading for _, reading in items])
    if len(value) > max_bytes and len(items) > 1:
        half = len(items) // 2
        return _fit(partition, items[:half], max_bytes) + _fit(partition, items[half:], max_bytes)
    tokens = tuple(dict.fromkeys(token for token, _ in items))
    return [Record(partition=partition, value=value, readings=len(items), tokens=tokens)]


def confirmations(records: Sequence[Record]) -> Counter[int]:
    """How many records each message waits for before its PUBACK."""
    return Counter(token for record in records for token in record.tokens)
