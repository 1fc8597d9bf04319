"""Snapshot rows to a table's changelog topic, in whole record batches.

A snapshot sends thousands of rows at once (a state per changed sensor). Faust's
``Table.send_changelog`` takes them one at a time through its producer buffer, about 110 µs
of the event loop each: with 10,000 sensors at 1,000 readings/s the worker's snapshots of
about 5,000 states waited 0.55-0.78 s for Kafka's confirmations, and every batch waited for
the snapshot (docs/performance.md). Here each partition's rows go into aiokafka record
batches (``create_batch``, ``send_batch``): one delivery per batch instead of one per row.

Rows keep their order within a partition, which is what the changelog needs: a later
snapshot's row of a key comes after the earlier one's, as its batches are added after.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

# (changelog partition, key, value); a value of None deletes the key (a tombstone).
Row = tuple[int, bytes, bytes | None]


class BatchProducer(Protocol):
    """The part of ``aiokafka.AIOKafkaProducer`` used here."""

    def create_batch(self) -> Any:
        """An empty record batch (``BatchBuilder``) of the producer's batch size."""

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Awaitable[object]:
        """Queue a batch for the partition; its delivery (Kafka's acknowledgement)."""


class RowWriter(Protocol):
    """Sends snapshot rows to a changelog (:class:`ChangelogWriter`; tests have fakes)."""

    def pack(self, rows: Iterable[Row]) -> Any:
        """Take the rows, one at a time, in the form :meth:`send` sends (record batches)."""

    async def send(self, packed: Any) -> list[Awaitable[object]]:
        """Queue what :meth:`pack` made; the deliveries to wait for."""


Packed = list[tuple[int, Any]]  # (partition, record batch), in the partition's order


class ChangelogWriter:
    """Sends rows to one changelog topic in record batches (see the module's docstring)."""

    def __init__(self, producer: Callable[[], BatchProducer], topic: str) -> None:
        # A callable: Faust starts its producer after the app (and this writer) is built.
        self._producer = producer
        self.topic = topic

    def pack(self, rows: Iterable[Row]) -> Packed:
        """The rows in record batches, each row copied into its partition's batch as it
        comes: a caller that encodes the rows one by one holds each only once, in its batch
        (a snapshot of 10,000 states held them twice, as rows then as batches)."""
        producer = self._producer()
        packed: Packed = []
        filling: dict[int, Any] = {}
        for partition, key, value in rows:
            batch = filling.get(partition)
            if batch is None:
                batch = filling[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # full
                packed.append((partition, batch))
                batch = filling[partition] = producer.create_batch()
                # The first record always fits, whatever its size (aiokafka's builder): if
                # that ever changed, say so rather than lose the row.
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"a changelog row of {key!r} fits in no record batch")
        # Each partition's last batch comes after its full ones: the order holds.
        return packed + list(filling.items())

    async def send(self, packed: Packed) -> list[Awaitable[object]]:
        """Queue the batches; the deliveries to wait for (one per record batch)."""
        producer = self._producer()
        return [
            await producer.send_batch(batch, self.topic, partition=partition)
            for partition, batch in packed
        ]
