"""The time limit on Kafka's confirmations: a send never confirmed stops the worker, acking nothing.

Every wait is bounded by the test itself (``asyncio.wait_for``), so without the limit these
tests fail with a TimeoutError instead of hanging.
"""

import asyncio
import logging
from collections.abc import Sequence

import pytest

from streams.app import StreamWorker
from streams.changelog import Row
from streams.deliveries import SendsUnconfirmed, confirmed
from streams.snapshots import LiveStates
from streams.state import SensorState
from tests.unit.streams.helpers import FakeTable, FakeTopic, FakeWriter, reading
from tests.unit.streams.test_snapshots import CODEC, Journal, SlowChangelog
from urbanpulse.registry import RegistryFile
from urbanpulse.settings import Settings, WorkerSettings
from urbanpulse.wire import encode_batch

LIMIT_S = 0.2
GUARD_S = 10  # the test's own bound: far past LIMIT_S, far below a hang noticed by hand


class UnansweredTopic(FakeTopic):
    """A topic whose deliveries Kafka confirms after ``delay_s`` (None: never)."""

    def __init__(self, delay_s: float | None) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.deliveries: list[asyncio.Future[None]] = []

    async def send(self, value: bytes, key: bytes | None = None) -> asyncio.Future[None]:
        self.sent.append((key, value))
        loop = asyncio.get_running_loop()
        delivery: asyncio.Future[None] = loop.create_future()
        if self.delay_s is not None:
            loop.call_later(self.delay_s, delivery.set_result, None)
        self.deliveries.append(delivery)
        return delivery


def worker_with(observations: FakeTopic, sensors: FakeTable) -> StreamWorker:
    """A worker whose observations topic is ``observations``, with the limit at LIMIT_S."""
    return StreamWorker(
        Settings(worker=WorkerSettings(send_confirm_timeout_s=LIMIT_S)),
        FakeWriter(),  # type: ignore[arg-type]
        RegistryFile("", 10),
        {
            **{n: FakeTopic() for n in ("deadletter", "alerts", "district")},
            "observations": observations,
        },
        {"sensor": sensors, "district": FakeTable()},
    )


def test_confirmed_returns_once_kafka_confirmed_every_send() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        deliveries = [loop.create_future() for _ in range(3)]
        for n, delivery in enumerate(deliveries):
            loop.call_later(0.01 * n, delivery.set_result, None)
        await asyncio.wait_for(confirmed(deliveries, LIMIT_S, "sends"), GUARD_S)
        assert all(d.done() for d in deliveries)

    asyncio.run(scenario())


def test_a_send_kafka_never_confirms_raises_after_the_limit_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        answered, unanswered = loop.create_future(), loop.create_future()
        answered.set_result(None)
        started = loop.time()
        with pytest.raises(SendsUnconfirmed, match=r"1 sends unconfirmed after 0\.2 s"):
            await asyncio.wait_for(confirmed([answered, unanswered], LIMIT_S, "sends"), GUARD_S)
        assert LIMIT_S <= loop.time() - started < GUARD_S
        return unanswered

    with caplog.at_level(logging.ERROR, logger="streams.deliveries"):
        unanswered = asyncio.run(scenario())
    assert not unanswered.cancelled()  # a late confirmation is harmless: left alone
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert "Kafka has not confirmed 1 of 2 sends after 0.2 s" in message
    assert "SEND_CONFIRM_TIMEOUT_S" in message and "stopping the worker" in message
    assert "none is lost" in message


def test_a_send_kafka_refuses_raises_its_own_error_before_the_limit() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        refused, unanswered = loop.create_future(), loop.create_future()
        loop.call_later(0.01, refused.set_exception, ValueError("MSG_SIZE_TOO_LARGE"))
        with pytest.raises(ValueError, match="MSG_SIZE_TOO_LARGE"):
            await asyncio.wait_for(confirmed([refused, unanswered], 60, "sends"), GUARD_S)

    asyncio.run(scenario())


def test_a_batch_whose_sends_kafka_never_confirms_fails_and_acks_nothing() -> None:
    journal, sensors = Journal(), FakeTable()
    worker = worker_with(UnansweredTopic(delay_s=None), sensors)

    async def scenario() -> None:
        batch = [(0, encode_batch([reading()]))]
        with pytest.raises(SendsUnconfirmed):
            await asyncio.wait_for(worker.handle_readings(batch, [journal.ack("r1")]), GUARD_S)
        await worker.snapshot()  # the worker stops; a timer still running saves nothing

    asyncio.run(scenario())
    assert sensors.data == {} and journal.events == []
    assert worker.sensors.discarded  # the successor starts again from the last snapshot


def test_a_batch_that_fails_while_completing_in_the_background_stops_the_worker() -> None:
    journal, sensors = Journal(), FakeTable()
    worker = worker_with(UnansweredTopic(delay_s=None), sensors)
    failures: list[BaseException] = []

    async def stop(err: BaseException) -> None:
        failures.append(err)

    worker.on_failure = stop

    async def scenario() -> None:
        batch = [(0, encode_batch([reading()]))]
        # Processed; its sends are confirmed (or not) in the background.
        await asyncio.wait_for(worker.start_readings(batch, [journal.ack("r1")]), GUARD_S)
        while not failures:
            await asyncio.sleep(0.01)
        await worker.snapshot()  # waits for the completion, which discarded the states
        later = [(0, encode_batch([reading(message_id="m2")]))]
        with pytest.raises(SendsUnconfirmed):  # the agent's next batch fails too
            await asyncio.wait_for(worker.start_readings(later), GUARD_S)

    asyncio.run(asyncio.wait_for(scenario(), GUARD_S))
    assert [type(err) for err in failures] == [SendsUnconfirmed]
    assert worker.sensors.discarded and sensors.data == {} and journal.events == []


def test_a_batch_whose_sends_kafka_confirms_within_the_limit_is_stored_and_acked() -> None:
    journal, sensors = Journal(), FakeTable()
    worker = worker_with(UnansweredTopic(delay_s=LIMIT_S / 4), sensors)

    async def scenario() -> None:
        batch = [(0, encode_batch([reading()]))]
        await asyncio.wait_for(worker.handle_readings(batch, [journal.ack("r1")]), GUARD_S)
        await worker.snapshot()

    asyncio.run(scenario())
    assert [r.sensor_id for r in worker.writer.raw] == ["air-1"]
    assert list(sensors.data) == [b"town/air-1"] and journal.events == ["ack r1"]


def test_a_snapshot_kafka_never_confirms_raises_and_keeps_everything_pending() -> None:
    journal = Journal()
    table = SlowChangelog(journal)  # confirms nothing unless told to
    live: LiveStates[SensorState] = LiveStates(CODEC, "sensors", confirm_timeout_s=LIMIT_S)

    async def scenario() -> None:
        live.put(b"t/a", SensorState(0, "t", "a"))
        live.hold([journal.ack("r1")], size=100)
        with pytest.raises(SendsUnconfirmed, match="sensors snapshots"):
            await asyncio.wait_for(live.snapshot(table), GUARD_S)

    asyncio.run(scenario())
    assert journal.events == ["send t/a"]  # nothing acked
    assert live.pending == (1, 1) and live.held_bytes == 100


def test_a_snapshot_kafka_never_takes_raises_within_the_limit_and_keeps_everything_pending() -> (
    None
):
    class StuckProducer(SlowChangelog):
        async def put_rows(self, rows: Sequence[Row]) -> list[asyncio.Future[None]]:
            await asyncio.Event().wait()  # aiokafka waiting for a broker that is away
            raise AssertionError("never queued")

    journal = Journal()
    live: LiveStates[SensorState] = LiveStates(CODEC, "sensors", confirm_timeout_s=LIMIT_S)

    async def scenario() -> None:
        live.put(b"t/a", SensorState(0, "t", "a"))
        live.hold([journal.ack("r1")], size=100)
        with pytest.raises(SendsUnconfirmed, match="sensors snapshots"):
            await asyncio.wait_for(live.snapshot(StuckProducer(journal)), GUARD_S)

    asyncio.run(scenario())
    assert journal.events == []  # nothing acked
    assert live.pending == (1, 1) and live.held_bytes == 100
