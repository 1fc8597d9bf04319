"""Kafka goes silent mid-stream (SIGSTOP): the worker stops at its confirmation limit, and the
restarted worker stores every reading once.

A paused broker keeps its connections open and answers nothing: Faust's producer neither
confirms nor fails a send for 20 minutes (``streams.deliveries``). With
``URBANPULSE_WORKER__SEND_CONFIRM_TIMEOUT_S`` at a few seconds the worker must log why and
exit non-zero while Kafka is still silent (within ``URBANPULSE_WORKER__STOP_TIMEOUT_S`` of
giving up); once Kafka runs again, a new worker (as Compose, Kubernetes or ``urbanpulse up``
would start) must leave every raw point once and every aggregate equal to the offline result.
It acts on the test services' Kafka only (``deploy/local/test.sh``).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_streams_worker import Scenario, assert_complete, complete, make_input
from tests.support import wait_for

CONFIRM_LIMIT_S = 4
STOP_TIMEOUT_S = 3
# Kafka stays silent until the worker exited, at most this long (limit + stop + the machine).
MAX_PAUSE_S = 30
STOPPED_MESSAGE = "Kafka has not confirmed"


def services_kafka_pid() -> int:
    """The pid of the test services' Kafka, checked to be the broker of this run directory."""
    run_dir = os.environ.get("URBANPULSE_SERVICES_RUN_DIR")
    if not run_dir:
        pytest.fail("run with deploy/local/test.sh: it starts the test services this pauses")
    pid = int((Path(run_dir) / "kafka.pid").read_text().strip())
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"kafka.Kafka" in cmdline and f"{run_dir}/kafka.properties".encode() in cmdline
    return pid


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    running = Scenario(tmp_path)
    running.env["URBANPULSE_WORKER__SEND_CONFIRM_TIMEOUT_S"] = str(CONFIRM_LIMIT_S)
    running.env["URBANPULSE_WORKER__STOP_TIMEOUT_S"] = str(STOP_TIMEOUT_S)
    try:
        yield running
    finally:
        running.close()


@pytest.mark.timeout(300)
def test_a_worker_kafka_stops_answering_exits_and_its_successor_stores_everything_once(
    scenario: Scenario,
) -> None:
    readings = make_input(scenario.tenant)
    kafka = services_kafka_pid()
    scenario.produce(readings)
    first = scenario.start_worker(0)
    wait_for(
        lambda: (first.check_alive(), len(scenario.raw()))[1] > len(readings) // 10,
        120,
        "a tenth of the input stored",
    )
    paused_at = time.monotonic()
    os.kill(kafka, signal.SIGSTOP)
    try:
        # Still paused: the worker must give up and exit without any answer from Kafka.
        wait_for(lambda: first.process.poll() is not None, MAX_PAUSE_S, "the worker to exit")
        exited_s = time.monotonic() - paused_at
    finally:
        os.kill(kafka, signal.SIGCONT)
    print(f"\nthe worker exited {exited_s:.1f} s after Kafka was paused")
    log = first.own_log()
    assert first.process.returncode != 0, log[-3000:]
    assert STOPPED_MESSAGE in log and "SendsUnconfirmed" in log, log[-3000:]
    assert exited_s >= CONFIRM_LIMIT_S

    scenario.start_worker(1)  # as its supervisor would
    wait_for(lambda: complete(scenario, readings), 180, "the restarted worker to finish")
    assert_complete(scenario, readings)
