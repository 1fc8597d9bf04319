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

from collections.abc import Awaitable, Callable, Sequence
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

    async def send(self, rows: Sequence[Row]) -> list[Awaitable[object]]:
        """Queue the rows; the deliveries to wait for."""


def by_partition(rows: Sequence[Row]) -> dict[int, list[tuple[bytes, bytes | None]]]:
    """The rows of each partition, in their order."""
    out: dict[int, list[tuple[bytes, bytes | None]]] = {}
    for partition, key, value in rows:
        out.setdefault(partition, []).append((key, value))
    return out


class ChangelogWriter:
    """Sends rows to one changelog topic in record batches (see the module's docstring)."""

    def __init__(self, producer: Callable[[], BatchProducer], topic: str) -> None:
        # A callable: Faust starts its producer after the app (and this writer) is built.
        self._producer = producer
        self.topic = topic

    async def send(self, rows: Sequence[Row]) -> list[Awaitable[object]]:
        """Queue the rows; the deliveries to wait for (one per record batch)."""
        producer = self._producer()
        deliveries = []
        for partition, items in by_partition(rows).items():
            batch = producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:  # full
                    deliveries.append(
                        await producer.send_batch(batch, self.topic, partition=partition)
                    )
                    batch = producer.create_batch()
                    # The first record always fits, whatever its size (aiokafka's builder).
                    batch.append(key=key, value=value, timestamp=None)
            deliveries.append(await producer.send_batch(batch, self.topic, partition=partition))
        return deliveries
