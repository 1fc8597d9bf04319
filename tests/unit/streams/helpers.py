"""Fakes and factories shared by the streams unit tests."""

import asyncio
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.app import TableState
from streams.changelog import Row
from urbanpulse.feed import decode_feed
from urbanpulse.model import Reading, validated

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def reading(**changes: object) -> Reading:
    fields: dict[str, object] = {
        "tenant": "town",
        "sensor_id": "air-1",
        "quantity": "pm2_5",
        "value": 12,
        "unit": "ug/m3",
        "observed_at": T0,
        "received_at": T0 + timedelta(seconds=1),
        "source_format": "json",
        "message_id": "m1",
    }
    fields.update(changes)
    return validated(**fields)


def series(
    values: list[float], step: timedelta = timedelta(minutes=1), **changes: object
) -> list[Reading]:
    return [
        reading(
            value=v,
            observed_at=T0 + i * step,
            received_at=T0 + i * step + timedelta(seconds=1),
            message_id=f"m{i}",
            **changes,
        )
        for i, v in enumerate(values)
    ]


class FakeWriter:
    """Stands in for ``InfluxWriter``: keeps what the worker would write."""

    def __init__(self) -> None:
        self.raw: list[Any] = []
        self.labels: dict[bytes, Any] = {}
        self.aggregates: list[str] = []

    def write(self, readings: list[Any], labels: Any = None) -> None:
        self.raw += readings
        self.labels.update(labels or {})

    def write_lines(self, lines: list[str]) -> None:
        self.aggregates += lines

    def stored_ids(self, query: Any) -> dict[Any, set[int]]:
        """No reading is stored in this InfluxDB (redelivered ones are all new)."""
        return {}


def done() -> asyncio.Future[None]:
    """A delivery Kafka has confirmed already."""
    delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    delivered.set_result(None)
    return delivered


class FakeTable:
    """Stands in for ``TableState``: the rows (partition, value) a snapshot sent, by key."""

    def __init__(self) -> None:
        self.data: dict[bytes, tuple[int, bytes | None]] = {}

    def pack_rows(self, rows: Iterable[Row]) -> list[Row]:
        return list(rows)

    async def put_rows(self, rows: Sequence[Row]) -> list[asyncio.Future[None]]:
        for partition, key, value in rows:
            self.data[key] = (partition, value)
        return [done()]

    def items(self) -> list[tuple[bytes, bytes]]:
        return [(k, v) for k, (_, v) in self.data.items() if v is not None]

    def forget(self, key: bytes) -> None:
        """Rows stay: the tests read what was saved."""


class FakeTopic:
    """Stands in for a Faust topic: keeps what was sent, as (key, value)."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes | None, bytes]] = []

    async def send(self, value: bytes, key: bytes | None = None) -> asyncio.Future[None]:
        """Keep the message; return its delivery, already done (as Kafka's acknowledgement)."""
        self.sent.append((key, value))
        return done()


class MemoryTable:
    """Stands in for a Faust table under ``streams.app.TableState``: the rows it recovered."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}


class MemoryChangelog:
    """Stands in for ``streams.changelog.ChangelogWriter``: keeps the rows sent, confirmed."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def pack(self, rows: Iterable[Row]) -> list[Row]:
        return list(rows)

    async def send(self, rows: Sequence[Row]) -> list[asyncio.Future[None]]:
        self.rows += rows
        return [done()]


def memory_table() -> TableState:
    """A state table in memory, its changelog confirming at once (the state lives only as
    long as the test)."""
    return TableState(MemoryTable(), MemoryChangelog())


Published = tuple[Any, ...]


def published(values: Iterable[bytes]) -> list[Published]:
    """What records of the observations topic (``urbanpulse.feed``) hold, a reading at a time:
    tenant, sensor, quantity, time, value, unit, location, flags."""
    out = []
    for value in values:
        runs = decode_feed(value)
        assert runs is not None, value[:80]
        for run in runs:
            for time, number in zip(run.times, run.values, strict=True):
                out.append(
                    (
                        run.tenant,
                        run.sensor_id,
                        run.quantity,
                        time,
                        number,
                        run.unit,
                        run.location,
                        run.quality_flags,
                    )
                )
    return out


def as_published(readings: Iterable[Reading]) -> list[Published]:
    """The readings as :func:`published` gives them."""
    return [
        (
            r.tenant,
            r.sensor_id,
            r.quantity,
            r.observed_at,
            r.value,
            r.unit,
            r.location,
            r.quality_flags,
        )
        for r in readings
    ]
