"""The partition stall watchdog: a safety net for a partition whose offsets stop advancing.

After a rebalance or a restart, faust-streaming can stop fetching a partition: its committed
offset stays put while messages wait (docs/streams.md, "Offsets after a rebalance"; nothing
is lost, since ``streams.consumer`` never commits past a reading it did not process).
:class:`StallWatch` is the pure rule: a partition is *stalled* when
messages wait for it (lag > 0) and its committed offset has not moved for ``stall_s``, with no
batch stuck in the worker meanwhile (a batch running for :data:`STUCK_BATCH_S` or more means
InfluxDB is slow or away: every partition waits for it, and that is lag, not a stall; a batch
waiting for Kafka's confirmations has its own limit, ``streams.deliveries``).
The adapter (:func:`check_partitions`, a timer in ``streams.app``) then stops the worker
with an error: a supervisor (Compose/Kubernetes ``restart``) starts a fresh consumer,
which resumes from the committed offsets. At-least-once delivery and idempotent points make
the replay safe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Partition = tuple[str, int]  # (topic, partition)
# A batch running this long is stuck on InfluxDB: a healthy one takes about batch_seconds.
STUCK_BATCH_S = 10.0


class PartitionStalled(RuntimeError):
    """Raised in the worker to stop it: partitions with lag that nothing reads."""


@dataclass
class StallWatch:
    """Remembers, per partition, its committed offset and since when it has not moved."""

    stall_s: float
    _since: dict[Partition, tuple[int | None, float]] = field(default_factory=dict)

    def reset(self) -> None:
        """Forget every clock: offsets standing still until now did not count as a stall."""
        self._since.clear()

    def observe(
        self,
        lags: Mapping[Partition, tuple[int | None, int]],
        busy: bool,
        now: float,
    ) -> list[Partition]:
        """Record (committed offset, lag) per assigned partition; return the stalled ones.

        A partition counts as stuck from the first check at which it had lag with the same
        committed offset; progress, no lag, or ``busy`` (a batch stuck on InfluxDB) resets
        the clock.
        Partitions no longer assigned are forgotten.
        """
        self._since = {tp: v for tp, v in self._since.items() if tp in lags}
        stalled = []
        for tp, (committed, lag) in lags.items():
            before = self._since.get(tp)
            if lag <= 0 or busy or before is None or before[0] != committed:
                self._since[tp] = (committed, now)
            elif now - before[1] >= self.stall_s:
                stalled.append(tp)
        return stalled


async def partition_lags(
    consumer: Any, topics: Collection[str]
) -> dict[Partition, tuple[int | None, int]]:
    """(committed offset, lag) of this worker's assigned partitions of ``topics``.

    Read like ``streams.metrics.refresh_lag``: committed offsets from Faust's own record,
    the high watermarks (and the earliest offsets, where nothing is committed) from Kafka.
    """
    assigned = [tp for tp in consumer.assignment() if tp.topic in topics]
    if not assigned:
        return {}
    committed = {tp: consumer._committed_offset.get(tp) for tp in assigned}
    highwaters = await consumer.highwaters(*assigned)
    unknown = [tp for tp, offset in committed.items() if offset is None]
    earliest = await consumer.earliest_offsets(*unknown) if unknown else {}
    out: dict[Partition, tuple[int | None, int]] = {}
    for tp in assigned:
        start = committed[tp] if committed[tp] is not None else earliest.get(tp, 0)
        out[(tp.topic, tp.partition)] = (committed[tp], max(0, highwaters.get(tp, 0) - start))
    return out


async def check_partitions(
    consumer: Any,
    topics: Collection[str],
    watch: StallWatch,
    stuck_for: Callable[[], float],
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """One watchdog round: raise :class:`PartitionStalled` if an assigned partition stalled.

    ``stuck_for`` says how long the worker's oldest batch in progress has been running.
    """
    try:
        lags = await partition_lags(consumer, topics)
    except Exception as err:  # a rebalance or Kafka away: look again at the next round
        log.warning("stall watchdog: offsets not read (%r)", err)
        return
    stalled = watch.observe(lags, stuck_for() >= STUCK_BATCH_S, clock())
    if stalled:
        detail = ", ".join(f"{t}[{p}] lag {lags[(t, p)][1]}" for t, p in sorted(stalled))
        log.error(
            "committed offsets not advanced for %.0f s although messages wait: %s; stopping "
            "the worker so that a fresh consumer resumes from the committed offsets",
            watch.stall_s,
            detail,
        )
        raise PartitionStalled(detail)
