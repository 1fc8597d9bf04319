"""A Faust consumer that commits a partition only up to the first reading it did not process.

faust-streaming 0.15.3 (``faust/transport/consumer.py``) lost readings after a consumer-group
rebalance; ``tests/integration/test_streams_handover.py`` showed it and worker logs with
Faust's own bookkeeping traced it (docs/streams.md, "Offsets after a rebalance"):

1. **Fetching before the seek.** After a rebalance, Faust resumes fetching during table
   recovery, *before* it seeks the partitions to their committed offsets: records come from
   wherever the fetcher stood, and the ones the rebalance had cleared from the agents' queues
   come again only after later ones.
2. **Read offsets.** The drain loop remembers the last offset it fetched per partition and
   *drops* any later-fetched record below it as already read: those re-fetched records were
   dropped unprocessed.
3. **Gaps.** A jump above the read offset is filed as a gap, and Faust's commit treats gap
   offsets as acknowledged (designed for compacted or transactional topics).
4. **The head check.** Before committing, ``_new_offset`` looks for a hole between the
   committed offset and the lowest acknowledged one only when the committed offset is truthy
   (a partition with no commit, or committed at 0, is not checked), and lets a hole of one
   offset through (the committed offset is the *next* offset to read).

Our source topics (the readings topic and the district topic) are written by idempotent,
non-transactional producers and are not compacted: their offsets have no gaps. And every
record may safely be processed twice (dedupe plus idempotent points). So this consumer, for
the topics whose offsets Faust commits from acknowledgements:

- after each rebalance, fetches a partition only once it has been seeked to where it starts:
  the committed offset, else the partition's first offset (where ``auto_offset_reset``
  starts). Otherwise a record read again after later ones of its sensor could be past the
  allowed lateness of its windows, and an aggregate would miss it (1);
- reports no read offset, so every fetched record reaches the agents: no drop, no gap (2, 3);
- commits only the run of consecutive acknowledged offsets that begins exactly at that
  start (4).

Other topics (table changelogs, read during recovery) keep Faust's behaviour.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer

log = logging.getLogger(__name__)

# How long Kafka may hold a fetch that found less than FETCH_MIN_BYTES (Faust hard-codes
# 1,500 ms). The fetcher has one fetch in flight per broker, for the partitions with nothing
# buffered: one that got records meanwhile waited for the others' long poll, and a reading sat
# up to 1.5 s in Kafka (publish -> queryable p99 1,660 ms at 1,000/s, docs/performance.md).
FETCH_MAX_WAIT_MS = 50
# How much a fetch waits for (aiokafka's default: 1 byte). With 1 byte a fetch came back with
# each of the ingest's small records: at a steady 1,000 readings/s the worker spent half a
# core, most of it in the fetch loop, and Kafka a fifth serving the fetches. With 64 kB and
# 50 ms: the machine's CPU per 1,000 readings 1.06-1.18 -> 0.68-0.80 s, for 25 ms more latency
# (p50 88-92 -> 113 ms; docs/performance.md, 2026-12-07 17:00). Under load a fetch fills at
# once and nothing changes.
FETCH_MIN_BYTES = 64 * 1024


def committable_run(acked: Sequence[int], start: int) -> list[int]:
    """The acknowledged offsets that may be committed: the consecutive run from ``start``.

    ``acked`` is sorted, with no offset below ``start``, the next offset to read (Kafka's
    committed offset). A missing ``start`` is a record not processed yet: nothing may be
    committed past it.
    """
    run: list[int] = []
    for offset in acked:
        if offset != start + len(run):
            break
        run.append(offset)
    return run


class ReadOffsets(defaultdict[Any, int | None]):
    """Faust's per-partition read offsets, never reported for topics committed from acks.

    The drain loop drops a fetched record below the read offset and files a jump above it as
    a gap (taken as acknowledged); with no read offset it does neither and delivers every
    record (points 2 and 3 of the module docstring).
    """

    def __init__(self, guarded: Callable[[str], bool]) -> None:
        super().__init__(lambda: None)
        self._guarded = guarded

    def __getitem__(self, tp: Any) -> int | None:
        if self._guarded(tp.topic):
            return None
        return super().__getitem__(tp)


class _ConsumerThread(AIOKafkaConsumerThread):  # type: ignore[misc]  # faust is untyped
    """Faust's consumer thread, whose aiokafka consumer long-polls :data:`FETCH_MAX_WAIT_MS`
    for :data:`FETCH_MIN_BYTES` (Faust sets neither)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Both read by its start(), not before.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        consumer._fetch_min_bytes = FETCH_MIN_BYTES
        return consumer


class SafeCommitConsumer(AIOKafkaConsumer):  # type: ignore[misc]  # faust is untyped
    """Faust's aiokafka consumer with the commit rules of the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_offset = ReadOffsets(self._acks_enabled)
        # Partitions seeked to their start since the last rebalance: only those are fetched.
        self._positioned: set[Any] = set()

    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _acks_enabled(self, topic: str) -> bool:
        return bool(self.app.topics.acks_enabled_for(topic))

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        """Stop handing out records of any partition until it is seeked again."""
        self._positioned.clear()
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[Any], generation_id: int = 0) -> None:
        """Stop handing out records of any partition until it is seeked again."""
        self._positioned.clear()
        await super().on_partitions_assigned(assigned, generation_id)

    async def _getmany(self, active_partitions: set[Any] | None, timeout: float) -> Any:
        """Fetch records, only of partitions positioned at their start in this assignment."""
        if active_partitions is not None:
            active_partitions = {
                tp
                for tp in active_partitions
                if tp in self._positioned or not self._acks_enabled(tp.topic)
            }
            if not active_partitions:
                await asyncio.sleep(min(timeout, 0.1))
                return {}
        return await super()._getmany(active_partitions, timeout)

    async def perform_seek(self) -> None:
        """Seek to the committed offsets, and learn where partitions with none start."""
        await super().perform_seek()  # seeks only where a commit > 0 exists
        guarded = [tp for tp in self.assignment() if self._acks_enabled(tp.topic)]
        unknown = [tp for tp in guarded if self._committed_offset.get(tp) is None]
        starts = await self.earliest_offsets(*unknown) if unknown else {}
        for tp in unknown:
            start = starts.get(tp)
            if start is None:
                continue  # unknown start: never fetched, nor committed, until the next seek
            await self.seek(tp, start)
            self._committed_offset[tp] = start
            log.debug("%s has no committed offset; it starts at %d", tp, start)
        self._positioned.update(tp for tp in guarded if self._committed_offset.get(tp) is not None)

    def _new_offset(self, tp: Any) -> int | None:
        """The offset to commit for ``tp`` (next to read), or None: nothing new to commit."""
        acked = self._acked[tp]
        start = self._committed_offset.get(tp)
        if not acked or start is None:
            return None
        acked.sort()
        stale = bisect.bisect_left(acked, start)  # committed already (acked before the seek)
        run = committable_run(acked[stale:], start)
        finished = acked[: stale + len(run)]
        del acked[: len(finished)]
        self._acked_index[tp].difference_update(finished)
        return run[-1] + 1 if run else None
