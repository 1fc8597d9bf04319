"""Snapshot rows go to the changelog in record batches, in their order within a partition."""

import asyncio
from typing import Any

from streams.changelog import ChangelogWriter, Row


class SmallBatches:
    """A producer whose record batches hold ``size`` records; keeps what it was sent."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent: list[tuple[str, int, list[tuple[bytes, bytes | None]]]] = []

    def create_batch(self) -> Any:
        return _Batch(self.size)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[None]:
        self.sent.append((topic, partition, batch.records))
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered


class _Batch:
    def __init__(self, size: int) -> None:
        self.size = size
        self.records: list[tuple[bytes, bytes | None]] = []

    def append(self, *, key: bytes, value: bytes | None, timestamp: None) -> object | None:
        if self.records and len(self.records) >= self.size:
            return None  # full, as aiokafka's BatchBuilder says it (the first always fits)
        self.records.append((key, value))
        return object()


def test_each_partitions_rows_fill_batches_in_order_one_delivery_per_batch() -> None:
    producer = SmallBatches(size=2)
    writer = ChangelogWriter(lambda: producer, "app-sensor-state-changelog")
    rows: list[Row] = [(n % 2, f"k{n}".encode(), None if n == 4 else b"v") for n in range(7)]

    packed = writer.pack(iter(rows))  # taken one by one, as a snapshot encodes them
    assert producer.sent == []  # nothing is sent before ``send``
    deliveries = asyncio.run(writer.send(packed))

    assert len(deliveries) == len(producer.sent) == 4  # partition 0: 4 rows, 1: 3 rows
    assert {topic for topic, _, _ in producer.sent} == {"app-sensor-state-changelog"}
    for partition in (0, 1):
        batches = [records for _, p, records in producer.sent if p == partition]
        assert all(0 < len(records) <= 2 for records in batches)
        sent = [record for records in batches for record in records]
        assert sent == [(key, value) for p, key, value in rows if p == partition]


def test_a_row_bigger_than_a_batch_gets_a_batch_of_its_own() -> None:
    producer = SmallBatches(size=0)  # as a row bigger than the batch size: one per batch
    writer = ChangelogWriter(lambda: producer, "t")
    rows: list[Row] = [(0, b"a", b"1"), (0, b"b", b"2")]

    asyncio.run(writer.send(writer.pack(rows)))

    assert [records for _, _, records in producer.sent] == [[(b"a", b"1")], [(b"b", b"2")]]
