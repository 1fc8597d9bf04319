"""Redelivered readings without their own time: which repeat a stored one (pure).

A reading without a time in its payload is observed when the ingestor received it, so a
message the broker delivers again (MQTT DUP, ``Reading.redelivered``) gives readings at a new
time, and its event time cannot tell the repeat (docs/streams.md, "Identity"). Its
``message_id`` can: a redelivered time-less reading is dropped when a reading of the same
sensor, probe and quantity with the same message id was stored at another time — earlier in
the same batch, else in InfluxDB (one query per batch that has such readings; rare, so no
memory is spent per sensor on it). A stored point with the *same* time is that reading itself,
stored before a crash and now replayed: it is processed again, as every replay is.

Readings with their own time need none of this (their time is their identity), and a reading
that was not redelivered is never dropped by its id: two publications of the same bytes are
two observations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from streams.quality import epoch_us
from urbanpulse.flux import literal
from urbanpulse.influx_layout import PROBE_TAG, READING_MEASUREMENT
from urbanpulse.model import Reading

Identity = tuple[str, str, str | None, str, str]  # tenant, sensor, probe, quantity, message id


def identity(reading: Reading) -> Identity:
    """What a redelivered reading is matched on."""
    return (reading.tenant, reading.sensor_id, reading.probe, reading.quantity, reading.message_id)


def timeless(reading: Reading) -> bool:
    """True for a reading without a time of its own (observed when it was received)."""
    return reading.observed_at == reading.received_at


@dataclass
class Screened:
    """A batch after the in-batch check: kept readings, and those to look up in InfluxDB."""

    readings: list[Reading] = field(default_factory=list)
    lookup: list[int] = field(default_factory=list)  # indexes in ``readings``
    repeats: int = 0  # dropped: a reading earlier in the batch had the same id


def screen(readings: list[Reading]) -> Screened:
    """Drop redelivered time-less readings repeating one earlier in the batch; list the rest."""
    out = Screened()
    if not any(r.redelivered for r in readings):
        out.readings = readings
        return out
    seen: set[Identity] = set()
    for reading in readings:
        key = identity(reading)
        if reading.redelivered and timeless(reading):
            if key in seen:
                out.repeats += 1
                continue
            out.lookup.append(len(out.readings))
        seen.add(key)
        out.readings.append(reading)
    return out


@dataclass(frozen=True)
class StoredIds:
    """The Flux query for the stored points of the looked-up readings' ids, and its range."""

    flux: str
    start: datetime
    stop: datetime


def stored_ids_query(
    readings: Iterable[Reading], bucket: str, horizon: timedelta
) -> StoredIds | None:
    """The query finding stored readings with these readings' ids (None: nothing to ask).

    Sensors and ids are literals (``urbanpulse.flux.literal``): InfluxDB 1.8 narrows a query
    to the series its tag literals name, and reads every series of the range otherwise.
    """
    wanted = list(readings)
    if not wanted:
        return None
    start = min(r.received_at for r in wanted) - horizon
    stop = max(r.received_at for r in wanted) + horizon
    sensors = sorted({(r.tenant, r.sensor_id) for r in wanted})
    ids = tuple(sorted({r.message_id for r in wanted}))
    which = " or ".join(
        f"(r.tenant == {literal(t)} and r.sensor_id == {literal(s)})" for t, s in sensors
    )
    flux = (
        f"from(bucket: {literal(bucket)})\n"
        f"  |> range(start: {literal(start)}, stop: {literal(stop)})\n"
        f"  |> filter(fn: (r) => r._measurement == {literal(READING_MEASUREMENT)}"
        f' and r._field == "message_id" and ({which}))\n'
        f"  |> filter(fn: (r) => contains(value: r._value, set: {literal(ids)}))\n"
        f'  |> keep(columns: ["_time", "_value", "tenant", "sensor_id", "quantity", '
        f'"{PROBE_TAG}"])\n'
    )
    return StoredIds(flux, start, stop)


StoredAt = dict[Identity, set[int]]  # identity → event times (µs) stored with it


def drop_repeats(screened: Screened, stored: StoredAt) -> int:
    """Drop (in place) the looked-up readings stored before at another time; how many."""
    drop = set()
    for index in screened.lookup:
        reading = screened.readings[index]
        times = stored.get(identity(reading))
        if times and times - {epoch_us(reading.observed_at)}:
            drop.add(index)
    if drop:
        screened.readings = [r for i, r in enumerate(screened.readings) if i not in drop]
    screened.lookup = []
    return len(drop)
