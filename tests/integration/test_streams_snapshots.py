"""Offsets wait for the snapshot that saves the states: a real worker on Kafka and InfluxDB.

With snapshots due only every 10 minutes, the worker stores the input (InfluxDB has it) but
commits no offset: its states are not saved yet (docs/streams.md, "State and offsets"). A clean
stop takes the snapshot and commits everything, so a restart reads nothing again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.integration.test_streams_worker import BOOTSTRAP, Scenario, make_input
from tests.support import wait_for


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    running = Scenario(tmp_path)
    running.env["URBANPULSE_WORKER__SNAPSHOT_S"] = "600"
    try:
        yield running
    finally:
        running.close()


def committed(scenario: Scenario) -> int:
    """Offsets the worker group committed on the readings topic."""
    consumer = Consumer(
        {"bootstrap.servers": BOOTSTRAP, "group.id": scenario.app_id, "enable.auto.commit": False}
    )
    try:
        tps = [TopicPartition(scenario.topic, p) for p in (0, 1)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10))
    finally:
        consumer.close()


@pytest.mark.timeout(600)
def test_offsets_wait_for_the_snapshot_and_a_clean_stop_takes_it(scenario: Scenario) -> None:
    readings = make_input(scenario.tenant)[:240]
    worker = scenario.start_worker()
    scenario.produce(readings)
    wait_for(lambda: (worker.check_alive(), len(scenario.raw()) == 240)[1], 180, "input stored")
    time.sleep(8)  # a few of Faust's commit intervals (2.8 s)
    assert committed(scenario) == 0, "offsets committed before the states were saved"
    started = time.monotonic()
    worker.stop()
    took = time.monotonic() - started
    print(f"\nclean stop in {took:.1f} s")
    assert worker.process.returncode == 0 and took < 15
    assert committed(scenario) == len(readings) and scenario.caught_up()
    assert "stopping took more than" not in worker.own_log()
