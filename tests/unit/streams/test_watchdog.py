import asyncio
import time
from typing import Any, NamedTuple

import pytest

from streams.app import StreamWorker
from streams.watchdog import PartitionStalled, StallWatch, check_partitions
from urbanpulse.registry import RegistryFile
from urbanpulse.settings import Settings

TP = ("readings", 0)


def test_a_partition_with_lag_and_no_progress_stalls_after_stall_s() -> None:
    watch = StallWatch(stall_s=60)
    assert watch.observe({TP: (100, 5)}, busy=False, now=0) == []
    assert watch.observe({TP: (100, 5)}, busy=False, now=59) == []
    assert watch.observe({TP: (100, 7)}, busy=False, now=60) == [TP]


def test_progress_no_lag_or_a_busy_worker_resets_the_clock() -> None:
    watch = StallWatch(stall_s=60)
    watch.observe({TP: (100, 5)}, busy=False, now=0)
    assert watch.observe({TP: (101, 5)}, busy=False, now=61) == []  # committed moved
    assert watch.observe({TP: (101, 0)}, busy=False, now=200) == []  # nothing waits
    assert watch.observe({TP: (101, 3)}, busy=True, now=300) == []  # InfluxDB slow, say
    assert watch.observe({TP: (101, 3)}, busy=False, now=359) == []
    assert watch.observe({TP: (101, 3)}, busy=False, now=360) == [TP]


def test_reset_restarts_every_clock() -> None:
    """The worker resets the watch after a rebalance or a table recovery of any length."""
    watch = StallWatch(stall_s=60)
    watch.observe({TP: (100, 5)}, busy=False, now=0)
    watch.reset()
    assert watch.observe({TP: (100, 5)}, busy=False, now=600) == []
    assert watch.observe({TP: (100, 5)}, busy=False, now=660) == [TP]


def test_never_committed_counts_and_revoked_partitions_are_forgotten() -> None:
    watch = StallWatch(stall_s=10)
    watch.observe({TP: (None, 4)}, busy=False, now=0)
    assert watch.observe({TP: (None, 4)}, busy=False, now=10) == [TP]
    watch.observe({}, busy=False, now=11)  # revoked
    assert watch.observe({TP: (None, 4)}, busy=False, now=30) == []


class FakeTP(NamedTuple):
    topic: str
    partition: int


class FakeConsumer:
    """Faust's consumer as the watchdog reads it: assignment, committed, watermarks."""

    def __init__(self, committed: dict[FakeTP, int | None], ends: dict[FakeTP, int]) -> None:
        self._committed_offset = committed
        self.ends = ends

    def assignment(self) -> set[FakeTP]:
        return set(self._committed_offset)

    async def highwaters(self, *tps: FakeTP) -> dict[FakeTP, int]:
        return {tp: self.ends[tp] for tp in tps}

    async def earliest_offsets(self, *tps: FakeTP) -> dict[FakeTP, int]:
        return dict.fromkeys(tps, 0)


def test_check_partitions_raises_for_a_stalled_partition_only() -> None:
    moving, stuck, other = FakeTP("readings", 0), FakeTP("readings", 1), FakeTP("other", 0)
    consumer = FakeConsumer({moving: 10, stuck: None, other: 0}, {moving: 10, stuck: 8, other: 9})
    watch = StallWatch(stall_s=5)
    now = [0.0]

    def run() -> Any:
        return asyncio.run(
            check_partitions(consumer, {"readings"}, watch, lambda: 0.0, lambda: now[0])
        )

    run()
    now[0] = 5
    with pytest.raises(PartitionStalled, match=r"readings\[1\] lag 8"):
        run()


def test_a_batch_stuck_on_influxdb_is_not_a_stall() -> None:
    stuck = FakeTP("readings", 1)
    consumer = FakeConsumer({stuck: 3}, {stuck: 8})
    watch = StallWatch(stall_s=5)
    for now in (0.0, 5.0, 10.0):
        asyncio.run(check_partitions(consumer, {"readings"}, watch, lambda: 60.0, lambda t=now: t))


def test_stuck_for_is_the_age_of_the_oldest_batch_in_progress() -> None:
    worker = StreamWorker(Settings(), None, RegistryFile("", 10), {}, {})  # type: ignore[arg-type]
    assert worker.stuck_for() == 0
    with worker.in_batch():
        with worker.in_batch():  # the district agent's batch, at the same time
            time.sleep(0.05)
        time.sleep(0.05)
        assert worker.stuck_for() >= 0.1
    assert worker.stuck_for() == 0
