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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec

from urbanpulse.model import InvalidReading, Reading, check, check_names


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    readings: list[msgspec.Raw]


class _Typed(msgspec.Struct, forbid_unknown_fields=True):
    readings: list[Reading]


class _Outgoing(msgspec.Struct):
    readings: Sequence[Reading]


_BATCH = msgspec.json.Decoder(_Batch)
_TYPED = msgspec.json.Decoder(_Typed)
_READING = msgspec.json.Decoder(Reading)
_ENCODER = msgspec.json.Encoder()


# A record stays well below Kafka's default 1 MB limit on a message (broker and producers):
# the same bounds as ingest's records (ingest/records.py).
MAX_RECORD_READINGS = 1000
MAX_RECORD_BYTES = 512 * 1024


def encode_batch(readings: Sequence[Reading]) -> bytes:
    """One record's value: the readings, in order."""
    return _ENCODER.encode(_Outgoing(readings))


def encode_batches(
    readings: Sequence[Reading], encode: Callable[[Sequence[Reading]], bytes] = encode_batch
) -> list[bytes]:
    """The readings as records of at most :data:`MAX_RECORD_READINGS` readings and
    :data:`MAX_RECORD_BYTES` bytes (one reading alone may be bigger: at most a few kB), in
    order: consumed one after the other, they keep each sensor's order. ``encode`` makes one
    record's value (the observations topic's: ``urbanpulse.feed``)."""
    out = []
    for start in range(0, len(readings), MAX_RECORD_READINGS):
        out += _within_bytes(readings[start : start + MAX_RECORD_READINGS], encode)
    return out


def _within_bytes(
    readings: Sequence[Reading], encode: Callable[[Sequence[Reading]], bytes]
) -> list[bytes]:
    value = encode(readings)
    if len(value) <= MAX_RECORD_BYTES or len(readings) == 1:
        return [value]
    half = len(readings) // 2
    return _within_bytes(readings[:half], encode) + _within_bytes(readings[half:], encode)


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
    try:  # every reading valid, the usual case: decoded in one pass
        return Decoded(_checked(_TYPED.decode(value).readings))
    except (msgspec.DecodeError, InvalidReading):
        return _decode_each(value)


def _checked(readings: list[Reading]) -> list[Reading]:
    """:func:`check` of each reading, its names matched only where they differ from the
    reading's before (else InvalidReading)."""
    out = []
    before = None
    for reading in readings:
        out.append(check(check_names(reading, before)))
        before = reading
    return out


def _decode_each(value: bytes) -> Decoded:
    """A record with a reading that breaks the model (or a single reading's JSON): each
    reading decoded apart, the bad ones refused with their own bytes."""
    out = Decoded()
    try:
        items = _BATCH.decode(value).readings
    except msgspec.DecodeError:  # a single reading (or garbage: refused below)
        items = [msgspec.Raw(value)]
    for item in items:
        raw = bytes(item)
        try:
            out.readings.append(check(check_names(_READING.decode(raw))))
        except (msgspec.DecodeError, InvalidReading) as err:
            out.refused.append(Refused(raw, str(err)))
    return out


def partition_of(key: bytes, partitions: int) -> int:
    """The partition of a sensor's key: librdkafka's default (CRC-32 of the key)."""
    return zlib.crc32(key) % partitions
