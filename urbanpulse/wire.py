"""How readings travel on Kafka: one record carries a batch of readings (pure).

The readings topic (ingest → worker) and the observations topic (worker → the API's live
feed) carry records of the form ``{"readings": [reading, ...]}``: many readings per record,
so Kafka, Faust and the consumers pay their per-record costs once per batch. All readings of
one sensor go to one partition (:func:`partition_of`, the partition librdkafka's default
partitioner picks for the sensor's key), in order, so a sensor's order is kept across records.

A record holding a single reading's JSON (what ingest wrote before batches) is still read.
One reading that breaks the model does not spoil its batch: :func:`decode_record` returns it
apart, with the reason, for the dead-letter topic.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from urbanpulse.model import InvalidReading, Reading, check


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    readings: list[msgspec.Raw]


class _Outgoing(msgspec.Struct):
    readings: Sequence[Reading]


_BATCH = msgspec.json.Decoder(_Batch)
_READING = msgspec.json.Decoder(Reading)
_ENCODER = msgspec.json.Encoder()


def encode_batch(readings: Sequence[Reading]) -> bytes:
    """One record's value: the readings, in order."""
    return _ENCODER.encode(_Outgoing(readings))


@dataclass(frozen=True)
class Refused:
    """Bytes that are not a valid reading, and why."""

    value: bytes
    reason: str


@dataclass
class Decoded:
    """What one record held: valid readings in order, and what was refused."""

    readings: list[Reading] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


def decode_record(value: bytes) -> Decoded:
    """The readings of a batch record (or of a single-reading record); never raises."""
    out = Decoded()
    try:
        items = _BATCH.decode(value).readings
    except msgspec.DecodeError:  # a single reading (or garbage: refused below)
        items = [msgspec.Raw(value)]
    for item in items:
        raw = bytes(item)
        try:
            out.readings.append(check(_READING.decode(raw)))
        except (msgspec.DecodeError, InvalidReading) as err:
            out.refused.append(Refused(raw, str(err)))
    return out


def partition_of(key: bytes, partitions: int) -> int:
    """The partition of a sensor's key: librdkafka's default (CRC-32 of the key)."""
    return zlib.crc32(key) % partitions
