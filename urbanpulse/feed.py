"""The observations topic's records: the readings the worker stored, for the live feed (pure).

The stream worker sends every reading InfluxDB accepted to the observations topic
(docs/streams.md, step 7); the API's live feed ``/v1/stream`` reads them (``api.stream``) and
needs only what it publishes: tenant, sensor, quantity, unit, position, flags, time and value.
So a record holds *runs*, ``{"runs": [run, ...]}``: consecutive readings of one sensor and
quantity that share unit, position and flags, with their event times and values as two lists.
At 50 readings a message a reading takes about 30 bytes of the topic instead of 200-330 as a
whole ``Reading`` (``urbanpulse.wire``; the range is its fields, and whether those at their
defaults are left out, as since 2026-12-07), and Kafka, its client and the broker copy and
check a seventh to a tenth of the bytes (docs/performance.md).

A record of whole readings, ``{"readings": [...]}`` (what a worker before runs sent), is not
a feed record: :func:`decode_feed` returns None, and the reader decodes it with
``urbanpulse.wire.decode_record``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from urbanpulse.model import AwareTime, Location, Reading
from urbanpulse.wire import encode_batches


class FeedRun(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """Consecutive stored readings of one series that share unit, position and flags."""

    tenant: str
    sensor_id: str
    quantity: str
    unit: str
    location: Location | None
    quality_flags: tuple[str, ...]
    times: list[AwareTime]  # event times, in the order stored
    values: list[float]  # one per time


class _FeedRecord(msgspec.Struct, forbid_unknown_fields=True):
    runs: list[FeedRun]


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(_FeedRecord)


def feed_records(readings: Sequence[Reading]) -> list[bytes]:
    """The readings as records of runs, in order, within the bounds of every record
    (``urbanpulse.wire.encode_batches``)."""
    return encode_batches(readings, _encode_runs)


def _encode_runs(readings: Sequence[Reading]) -> bytes:
    return _ENCODER.encode(_FeedRecord(runs_of(readings)))


def runs_of(readings: Sequence[Reading]) -> list[FeedRun]:
    """The readings as runs, in order."""
    runs: list[FeedRun] = []
    times: list[datetime] = []
    values: list[float] = []
    before: Reading | None = None
    for reading in readings:
        if before is None or not _same_run(reading, before):
            times, values = [], []
            runs.append(
                FeedRun(
                    reading.tenant,
                    reading.sensor_id,
                    reading.quantity,
                    reading.unit,
                    reading.location,
                    reading.quality_flags,
                    times,
                    values,
                )
            )
        times.append(reading.observed_at)
        values.append(reading.value)
        before = reading
    return runs


def _same_run(reading: Reading, other: Reading) -> bool:
    return (
        reading.sensor_id == other.sensor_id
        and reading.quantity == other.quantity
        and reading.quality_flags == other.quality_flags
        and reading.unit == other.unit
        and reading.location == other.location
        and reading.tenant == other.tenant
    )


def decode_feed(value: bytes) -> list[FeedRun] | None:
    """The runs of a feed record, or None if the bytes are not one (whole readings from an
    older worker, or garbage: ``urbanpulse.wire.decode_record`` tells which)."""
    try:
        runs = _DECODER.decode(value).runs
    except msgspec.DecodeError:
        return None
    if any(len(run.times) != len(run.values) for run in runs):
        return None
    return runs
