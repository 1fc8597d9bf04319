"""The commit rules of ``streams.consumer``: never past a reading that was not processed."""

from __future__ import annotations

import asyncio
import inspect
from collections import defaultdict
from types import SimpleNamespace
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as FaustConsumer
from hypothesis import given
from hypothesis import strategies as st

from streams.consumer import (
    FETCH_MAX_WAIT_MS,
    FETCH_MIN_BYTES,
    ReadOffsets,
    SafeCommitConsumer,
    _ConsumerThread,
    committable_run,
)


class TP(NamedTuple):
    topic: str
    partition: int


READINGS = TP("readings", 1)


def bookkeeping(consumer_class: type, committed: int | None, acked: list[int]) -> Any:
    """A consumer with only Faust's offset bookkeeping set (no Kafka, no app)."""
    consumer: Any = object.__new__(consumer_class)
    consumer._acked = defaultdict(list, {READINGS: list(acked)})
    consumer._acked_index = defaultdict(set, {READINGS: set(acked)})
    consumer._committed_offset = defaultdict(lambda: None, {READINGS: committed})
    consumer._gap = defaultdict(dict)
    return consumer


def test_the_run_starts_at_the_committed_offset_and_stops_at_a_hole() -> None:
    assert committable_run([81, 82, 83, 85], 81) == [81, 82, 83]
    assert committable_run([82, 83], 81) == []
    assert committable_run([], 81) == []


@given(st.integers(0, 50), st.sets(st.integers(0, 120)))
def test_no_committed_run_skips_an_offset(start: int, offsets: set[int]) -> None:
    acked = sorted(o for o in offsets if o >= start)
    run = committable_run(acked, start)
    assert run == list(range(start, start + len(run)))
    assert start + len(run) not in offsets


def test_a_hole_of_one_offset_after_the_commit_blocks_the_commit() -> None:
    # 81 is the next offset to read and was never processed; 82-90 were.
    consumer = bookkeeping(SafeCommitConsumer, 81, list(range(82, 91)))
    assert consumer._new_offset(READINGS) is None
    assert consumer._acked[READINGS] == list(range(82, 91))  # kept for when 81 arrives
    consumer._acked[READINGS].append(81)
    consumer._acked_index[READINGS].add(81)
    assert consumer._new_offset(READINGS) == 91
    assert consumer._acked[READINGS] == [] and consumer._acked_index[READINGS] == set()


def test_faust_itself_commits_past_that_hole() -> None:
    # The upstream defect this module works around (faust-streaming 0.15.3). If this starts
    # failing, Faust fixed it: see whether streams.consumer is still needed.
    assert bookkeeping(FaustConsumer, 81, list(range(82, 91)))._new_offset(READINGS) == 91
    assert bookkeeping(FaustConsumer, None, list(range(87, 91)))._new_offset(READINGS) == 91


def test_nothing_is_committed_before_the_start_of_a_partition_is_known() -> None:
    # A partition with no commit yet: until the seek after assignment tells where it starts.
    consumer = bookkeeping(SafeCommitConsumer, None, [0, 1, 2])
    assert consumer._new_offset(READINGS) is None
    consumer._committed_offset[READINGS] = 0
    assert consumer._new_offset(READINGS) == 3


def test_offsets_acknowledged_below_the_commit_are_dropped() -> None:
    # Records processed before the seek to the committed offset, and committed since.
    consumer = bookkeeping(SafeCommitConsumer, 40, [25, 30, 39, 40, 41, 43])
    assert consumer._new_offset(READINGS) == 42
    assert consumer._acked[READINGS] == [43]
    assert consumer._acked_index[READINGS] == {43}


def test_read_offsets_are_never_reported_for_topics_committed_from_acks() -> None:
    offsets = ReadOffsets(lambda topic: topic == "readings")
    changelog = TP("sensor-state-changelog", 0)
    offsets[READINGS] = 86
    offsets[changelog] = 12
    assert offsets[READINGS] is None
    assert offsets[changelog] == 12
    assert offsets[TP("other", 3)] is None
    offsets.pop(READINGS)


class FakeThread:
    """Stands in for Faust's consumer thread: records which partitions were fetched."""

    def __init__(self) -> None:
        self.fetched: list[set[TP]] = []

    async def getmany(self, active: set[TP], timeout: float) -> dict[TP, list[object]]:
        self.fetched.append(set(active))
        return {}


def test_a_partition_is_fetched_only_once_seeked_to_its_start_after_a_rebalance() -> None:
    changelog = TP("sensor-state-changelog", 0)
    consumer: Any = object.__new__(SafeCommitConsumer)
    consumer.app = SimpleNamespace(
        topics=SimpleNamespace(acks_enabled_for=lambda t: t == "readings")
    )
    consumer._thread = FakeThread()
    consumer._positioned = set()
    asyncio.run(consumer._getmany({READINGS, changelog}, 0.01))
    consumer._positioned.add(READINGS)
    asyncio.run(consumer._getmany({READINGS, changelog}, 0.01))
    # Table recovery reads its changelog at once; the readings wait for their seek.
    assert consumer._thread.fetched == [{changelog}, {READINGS, changelog}]


def test_the_aiokafka_consumer_long_polls_for_a_batch_of_bytes(monkeypatch: Any) -> None:
    built = SimpleNamespace(_fetch_max_wait_ms=500, _fetch_min_bytes=1)  # aiokafka's defaults
    monkeypatch.setattr(
        AIOKafkaConsumerThread, "_create_worker_consumer", lambda self, transport: built
    )
    consumer = _ConsumerThread._create_worker_consumer(object.__new__(_ConsumerThread), None)
    assert (consumer._fetch_max_wait_ms, consumer._fetch_min_bytes) == (
        FETCH_MAX_WAIT_MS,
        FETCH_MIN_BYTES,
    )


def test_aiokafka_still_reads_the_fetch_settings_when_it_starts() -> None:
    # _ConsumerThread sets private attributes that AIOKafkaConsumer.start() hands its fetcher;
    # an aiokafka that reads them elsewhere would silently keep its defaults.
    source = inspect.getsource(AIOKafkaConsumer.start)
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in source
    assert "fetch_min_bytes=self._fetch_min_bytes" in source
