"""A second worker joins while input flows: every partition handed over keeps being read.

The regression test of the partition handover stall (docs/streams.md, "Running N workers"):
a partition that moves to a new worker after the old one consumed but had not yet committed
it must still be read to its end. The first worker runs alone while readings are produced at
a steady pace; the second joins half-way (or as soon as input arrives), so the rebalance
always happens mid-stream with uncommitted offsets in flight. Every point must land exactly
once and the aggregates must equal the offline computation, as in a one-worker run.

faust-streaming can still stop reading a partition after such a rebalance (docs/streams.md);
the worker's stall watchdog then stops it, and the test restarts it as Compose or Kubernetes
would (with a 30 s watchdog limit instead of 300 s) and prints how many restarts it took.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from influxdb_client import InfluxDBClient

from tests.integration.test_streams_worker import (
    BOOTSTRAP,
    Scenario,
    Worker,
    assert_complete,
    complete,
    make_input,
    report,
)
from tests.support import wait_for
from urbanpulse.model import Reading
from urbanpulse.settings import Settings

# Input is produced over about this many seconds; the second worker joins half-way.
PRODUCE_SECONDS = 30.0
# The stall watchdog's limit here (300 s in production): a stalled worker stops after it.
STALL_RESTART_S = 30


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    running = Scenario(tmp_path)
    # a loaded InfluxDB may answer slowly
    running.env["URBANPULSE_WORKER__STALL_RESTART_S"] = str(STALL_RESTART_S)
    running.influx.close()
    running.influx = InfluxDBClient(url=Settings().influx.url, token="", org="-", timeout=180_000)
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


class Supervisor:
    """Restarts a worker the stall watchdog stopped, as Compose or Kubernetes would."""

    def __init__(self, scenario: Scenario, workers: dict[int, Worker]) -> None:
        self.scenario = scenario
        self.workers = workers
        self.restarts = 0

    def tend(self) -> None:
        """Restart workers stopped by the watchdog; fail on any other exit."""
        for n, worker in list(self.workers.items()):
            if worker.process.poll() is None:
                continue
            if "PartitionStalled" not in worker.log.read_text(errors="replace"):
                worker.check_alive()  # raises, with the log's tail
            self.restarts += 1
            print(f"\nthe watchdog stopped worker {n}; restart {self.restarts}")
            self.workers[n] = self.scenario.start_worker(n)


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    "join",
    [
        "half-way",
        pytest.param(
            "at-first-input",
            marks=pytest.mark.xfail(
                strict=False,
                reason="faust-streaming 0.15.3 can skip messages of a partition it keeps across "
                "a rebalance in its first batches: in 3 of 9 runs readings were missing, once "
                "with the offsets committed past them (docs/streams.md, known defect)",
            ),
        ),
    ],
)
def test_a_worker_joining_mid_stream_leaves_no_partition_behind(
    scenario: Scenario, join: str
) -> None:
    readings = make_input(scenario.tenant)
    first = scenario.start_worker(0)
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
    supervisor = Supervisor(scenario, {0: first, 1: scenario.start_worker(1)})
    print(f"\nworker 1 joins: {committed} committed of {produced} produced of {len(readings)}")
    assert producer.is_alive() and committed < len(readings), "the join was not mid-stream"
    producer.join(timeout=120)
    assert not producer.is_alive(), "the producer did not finish"
    wait_for(
        lambda: (supervisor.tend(), complete(scenario, readings))[1],
        300,
        "both workers to store the whole input",
    )
    supervisor.tend()
    report(f"joins mid-stream ({join})", scenario, readings)
    print(f"watchdog restarts: {supervisor.restarts}")
    assert_complete(scenario, readings)
