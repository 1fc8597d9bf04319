"""A second worker joins while input flows: every reading is stored once, none is skipped.

The regression test of the partition handover (docs/streams.md, "Offsets after a
rebalance"): the first worker runs alone while readings are produced at a steady pace; the
second joins half-way (once the first has committed some input) or as soon as input arrives
(the rebalance hits the first worker's first batches, on partitions with no commit yet), so
the rebalance always happens with uncommitted offsets in flight. Every point must land
exactly once and the aggregates must equal the offline computation, as in a one-worker run.

faust-streaming can still stop fetching a partition after such a rebalance; the worker's
stall watchdog then stops it, and the test's supervisor restarts it as Compose or Kubernetes
would (``test_streams_worker.Supervisor``) and prints how many restarts it took.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.integration.test_streams_worker import (
    BOOTSTRAP,
    Scenario,
    Supervisor,
    assert_complete,
    make_input,
    report,
)
from tests.support import wait_for
from urbanpulse.model import Reading

# Input is produced over about this many seconds; the second worker joins half-way.
PRODUCE_SECONDS = 30.0


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    running = Scenario(tmp_path)
    try:
        yield running
    finally:
        running.close()


def produce_paced(
    scenario: Scenario, readings: list[Reading], seconds: float, half: threading.Event
) -> None:
    """Produce the readings in 40 slices spread over ``seconds``; set ``half`` half-way."""
    slices = 40
    step = max(1, len(readings) // slices)
    for start in range(0, len(readings), step):
        scenario.produce(readings[start : start + step])
        if start >= len(readings) // 2:
            half.set()
        time.sleep(seconds / slices)


def group_progress(scenario: Scenario) -> tuple[int, int]:
    """(offsets committed by the worker group, offsets produced) over the readings topic."""
    consumer = Consumer(
        {"bootstrap.servers": BOOTSTRAP, "group.id": scenario.app_id, "enable.auto.commit": False}
    )
    try:
        tps = [TopicPartition(scenario.topic, p) for p in (0, 1)]
        committed = consumer.committed(tps, timeout=10)
        ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
    finally:
        consumer.close()
    return sum(max(c.offset, 0) for c in committed), sum(ends)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("join", ["half-way", "at-first-input"])
def test_a_worker_joining_mid_stream_leaves_no_partition_behind(
    scenario: Scenario, join: str
) -> None:
    readings = make_input(scenario.tenant)
    supervisor = Supervisor(scenario)
    first = supervisor.start(0)
    wait_for(lambda: "Ready" in first.log.read_text(errors="replace"), 120, "worker 0 ready")
    half = threading.Event()
    producer = threading.Thread(
        target=produce_paced, args=(scenario, readings, PRODUCE_SECONDS, half), daemon=True
    )
    producer.start()
    if join == "half-way":
        # Once worker 0 has committed some input and while input still flows: the rebalance
        # takes a partition from a worker with consumed, uncommitted offsets.
        assert half.wait(120), "the producer did not get half-way"
        wait_for(lambda: group_progress(scenario)[0] > 0, 120, "worker 0 to commit some input")
    else:
        # As soon as input arrives: the rebalance hits worker 0 in its first batches.
        wait_for(lambda: group_progress(scenario)[1] > 0, 120, "the first input")
    committed, produced = group_progress(scenario)
    supervisor.start(1)
    print(f"\nworker 1 joins: {committed} committed of {produced} produced of {len(readings)}")
    assert producer.is_alive() and committed < len(readings), "the join was not mid-stream"
    producer.join(timeout=120)
    assert not producer.is_alive(), "the producer did not finish"
    wait_for(lambda: supervisor.finished(readings), 300, "both workers to store the whole input")
    report(f"joins mid-stream ({join})", scenario, readings)
    print(f"watchdog restarts: {supervisor.restarts}")
    assert_complete(scenario, readings)
