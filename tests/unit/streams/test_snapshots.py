"""Snapshots: a record is acked only once the saved state covering it is confirmed by Kafka."""

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

import pytest

from streams.app import MAX_HELD_BYTES, StreamWorker
from streams.changelog import Row
from streams.pipeline import StreamsConfig, unwritten_aggregates
from streams.snapshots import Codec, LiveStates
from streams.state import SensorState, decode_sensor, encode_sensor
from tests.unit.streams.helpers import T0, FakeTable, FakeTopic, FakeWriter, reading
from tests.unit.streams.test_metrics import samples
from urbanpulse.registry import RegistryFile
from urbanpulse.settings import Settings
from urbanpulse.wire import encode_batch

CODEC = Codec(encode_sensor, decode_sensor, lambda s: s.partition)
CONFIG = StreamsConfig.from_settings(Settings().streams)
GUARD_S = 10  # the test's own bound on every wait


class Journal:
    """What happened, in order: changelog sends, their confirmations, acks."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def ack(self, name: str) -> Callable[[], Any]:
        async def ack() -> None:
            self.events.append(f"ack {name}")

        return ack


class SlowChangelog:
    """A table whose changelog confirms each send only when the test says so."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.deliveries: list[asyncio.Future[None]] = []
        self.rows: dict[bytes, bytes] = {}

    def pack_rows(self, rows: Iterable[Row]) -> list[Row]:
        return list(rows)

    async def put_rows(self, rows: Sequence[Row]) -> list[asyncio.Future[None]]:
        return [self._put(key) for _, key, _ in rows]

    def _put(self, key: bytes) -> asyncio.Future[None]:
        self.journal.events.append(f"send {key.decode()}")
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivery.add_done_callback(
            lambda _: self.journal.events.append(f"confirmed {key.decode()}")
        )
        self.deliveries.append(delivery)
        return delivery

    def items(self) -> list[tuple[bytes, bytes]]:
        return list(self.rows.items())

    def forget(self, key: bytes) -> None:
        self.rows.pop(key, None)


def test_acks_come_only_after_kafka_confirmed_every_state_of_the_snapshot() -> None:
    journal = Journal()
    table = SlowChangelog(journal)
    live: LiveStates[SensorState] = LiveStates(CODEC, "sensors")

    async def scenario() -> None:
        live.put(b"t/a", SensorState(0, "t", "a"))
        live.put(b"t/b", SensorState(1, "t", "b"))
        live.hold([journal.ack("r1"), journal.ack("r2")])
        snapshot = asyncio.create_task(live.snapshot(table))
        await asyncio.sleep(0.01)
        assert journal.events == ["send t/a", "send t/b"]  # nothing acked yet
        table.deliveries[1].set_result(None)
        await asyncio.sleep(0.01)
        assert "ack r1" not in journal.events  # one state still unconfirmed
        table.deliveries[0].set_result(None)
        assert await snapshot == 2

    asyncio.run(scenario())
    assert journal.events == [
        "send t/a",
        "send t/b",
        "confirmed t/b",
        "confirmed t/a",
        "ack r1",
        "ack r2",
    ]
    assert live.pending == (0, 0)


def test_a_refused_snapshot_acks_nothing_and_keeps_everything_for_the_next() -> None:
    journal = Journal()
    table = SlowChangelog(journal)
    live: LiveStates[SensorState] = LiveStates(CODEC, "sensors")

    async def scenario() -> None:
        live.put(b"t/a", SensorState(0, "t", "a"))
        live.hold([journal.ack("r1")], size=100)
        snapshot = asyncio.create_task(live.snapshot(table))
        await asyncio.sleep(0.01)
        table.deliveries[0].set_exception(RuntimeError("Kafka refused"))
        with pytest.raises(RuntimeError):
            await snapshot
        assert live.pending == (1, 1) and live.held_bytes == 100
        live.hold([journal.ack("r2")])  # a later batch
        retry = asyncio.create_task(live.snapshot(table))
        await asyncio.sleep(0.01)
        table.deliveries[1].set_result(None)
        await retry

    asyncio.run(scenario())
    assert [e for e in journal.events if e.startswith("ack")] == ["ack r1", "ack r2"]
    assert journal.events.index("ack r1") > journal.events.index("confirmed t/a")


def test_a_state_that_cannot_be_encoded_fails_the_snapshot_and_keeps_everything_pending() -> None:
    def encode(state: SensorState) -> bytes:
        if state.sensor_id == "b":
            raise ValueError("not encodable")
        return encode_sensor(state)

    journal = Journal()
    table = SlowChangelog(journal)
    live = LiveStates(Codec(encode, decode_sensor, CODEC.partition), "sensors")

    async def scenario() -> None:
        live.put(b"t/a", SensorState(0, "t", "a"))
        live.put(b"t/b", SensorState(1, "t", "b"))
        live.hold([journal.ack("r1")], size=100)
        with pytest.raises(ValueError, match="not encodable"):
            await asyncio.wait_for(live.snapshot(table), GUARD_S)

    asyncio.run(scenario())
    assert journal.events == []  # nothing sent (the state before it was packed, not sent)
    assert live.pending == (2, 1) and live.held_bytes == 100


def test_a_snapshot_waits_for_the_batch_in_progress() -> None:
    journal = Journal()
    table = SlowChangelog(journal)
    live: LiveStates[SensorState] = LiveStates(CODEC, "sensors")

    async def scenario() -> None:
        batch_done = asyncio.Event()

        async def batch() -> None:
            async with live.lock:  # as StreamWorker.handle_readings
                live.put(b"t/a", SensorState(0, "t", "a"))
                await batch_done.wait()  # writing to InfluxDB, sending to Kafka
                live.hold([journal.ack("r1")])

        running = asyncio.create_task(batch())
        await asyncio.sleep(0.01)
        snapshot = asyncio.create_task(live.snapshot(table))
        await asyncio.sleep(0.01)
        assert journal.events == []  # the state of an unfinished batch is not saved
        batch_done.set()
        await running
        await asyncio.sleep(0.01)
        table.deliveries[0].set_result(None)
        await snapshot

    asyncio.run(scenario())
    assert journal.events == ["send t/a", "confirmed t/a", "ack r1"]


def test_states_are_loaded_by_partition_and_forgotten_when_revoked() -> None:
    table = SlowChangelog(Journal())
    for n, partition in enumerate([0, 1, 1]):
        table.rows[f"t/s{n}".encode()] = encode_sensor(SensorState(partition, "t", f"s{n}"))
    live: LiveStates[SensorState] = LiveStates(CODEC, "sensors")
    assert live.load(table, {1}) == 2
    assert sorted(live.states) == [b"t/s1", b"t/s2"] and list(table.rows) == [b"t/s0"]
    assert live.load(table, {1}) == 0  # loaded already
    assert live.load(table, {0, 1}) == 1
    live.keep_only({0})  # partition 1 went to another worker
    assert sorted(live.states) == [b"t/s0"]
    assert [s.sensor_id for _, s in live.items({0})] == ["s0"]


def test_states_a_failed_batch_changed_are_never_saved_nor_its_acks_released() -> None:
    class BrokenTopic(FakeTopic):
        async def send(self, value: bytes, key: bytes | None = None) -> asyncio.Future[None]:
            raise ValueError("Kafka refused the message for good")

    journal = Journal()
    sensors = FakeTable()
    topics: dict[str, FakeTopic] = {n: FakeTopic() for n in ("deadletter", "alerts", "district")}
    worker = StreamWorker(
        Settings(),
        FakeWriter(),  # type: ignore[arg-type]
        RegistryFile("", 10),
        {**topics, "observations": BrokenTopic()},
        {"sensor": sensors, "district": FakeTable()},
    )

    async def scenario() -> None:
        batch = [(0, encode_batch([reading()]))]
        with pytest.raises(ValueError):
            await worker.handle_readings(batch, [journal.ack("r1")])
        await worker.snapshot()  # the worker stops; whatever a timer still does saves nothing

    asyncio.run(scenario())
    assert sensors.data == {} and journal.events == []
    assert worker.sensors.discarded


def test_aggregates_are_written_before_the_acks_and_kept_when_influxdb_refuses() -> None:
    class FlakyAggregates(FakeWriter):
        refuse = True

        def write_lines(self, lines: list[str]) -> None:
            if self.refuse:
                raise ValueError("InfluxDB away")
            super().write_lines(lines)

    journal = Journal()
    sensors = FakeTable()
    writer = FlakyAggregates()
    worker = fake_worker(sensors, writer=writer)

    async def scenario() -> None:
        await worker.handle_readings([(0, encode_batch([reading()]))], [journal.ack("r1")])
        assert writer.aggregates == []  # not per batch: at the snapshot
        with pytest.raises(ValueError):
            await worker.snapshot()
        assert sensors.data == {} and journal.events == []  # nothing saved, nothing acked
        writer.refuse = False
        await worker.snapshot()

    asyncio.run(scenario())
    assert len(writer.aggregates) == 3  # the reading's 1m, 15m and 1h windows
    assert list(sensors.data) == [b"town/air-1"] and journal.events == ["ack r1"]


def test_a_snapshot_that_saved_states_is_timed_and_one_with_nothing_to_save_is_not() -> None:
    worker = fake_worker()

    async def scenario() -> None:
        await worker.handle_readings([(0, encode_batch([reading()]))])
        await worker.snapshot()
        await worker.snapshot()  # nothing changed since

    asyncio.run(scenario())
    found = samples(worker.metrics)
    assert found["urbanpulse_worker_snapshot_seconds_count{table=sensor}"] == 1
    assert "urbanpulse_worker_snapshot_seconds_count{table=district}" not in found


class HeldAggregates(FakeWriter):
    """A writer whose aggregate writes wait until the test lets them through."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = threading.Event()
        self.go_on = threading.Event()

    def write_lines(self, lines: list[str]) -> None:
        self.writing.set()
        assert self.go_on.wait(GUARD_S), "the test never let the write through"
        super().write_lines(lines)


def test_batches_run_while_a_snapshot_writes_aggregates_and_their_windows_are_written_next() -> (
    None
):
    journal, sensors, writer = Journal(), FakeTable(), HeldAggregates()
    worker = fake_worker(sensors, writer=writer)
    first, second = reading(), reading(observed_at=T0 + timedelta(seconds=10), message_id="m2")

    async def scenario() -> None:
        await worker.handle_readings([(0, encode_batch([first]))], [journal.ack("r1")])
        snapshot = asyncio.create_task(worker.snapshot())
        while not writer.writing.is_set():  # the snapshot is writing the first aggregates
            await asyncio.sleep(0.001)
        # A batch of the same sensor, same windows, runs to its end meanwhile.
        await asyncio.wait_for(
            worker.handle_readings([(0, encode_batch([second]))], [journal.ack("r2")]), GUARD_S
        )
        assert journal.events == []
        writer.go_on.set()
        await asyncio.wait_for(snapshot, GUARD_S)
        assert journal.events == ["ack r1", "ack r2"]  # the state saved covers both batches
        assert counts(writer.aggregates) == [1, 1, 1]  # written before the second batch
        # The saved state knows its windows changed since that write: a restart rewrites them.
        _, saved = sensors.data[b"town/air-1"]
        assert saved is not None and list(unwritten_aggregates(decode_sensor(saved), CONFIG))
        await worker.snapshot()
        assert counts(writer.aggregates[3:]) == [2, 2, 2]

    asyncio.run(scenario())


class HeldRaw(FakeWriter):
    """InfluxDB taking the n-th raw write only once the test sets ``go_on[n]`` (writes run
    in a thread, as the worker's do)."""

    def __init__(self) -> None:
        super().__init__()
        self.go_on = [threading.Event(), threading.Event()]
        self.calls = 0

    def write(self, readings: list[Any], labels: Any = None) -> None:
        self.calls += 1
        if self.calls <= len(self.go_on):
            self.go_on[self.calls - 1].wait(GUARD_S)
        super().write(readings, labels)


def test_the_next_batch_is_processed_while_one_completes_and_a_snapshot_waits_for_both() -> None:
    journal, sensors, writer = Journal(), FakeTable(), HeldRaw()
    worker = fake_worker(sensors, writer=writer)
    first = reading()
    second = reading(sensor_id="air-2", message_id="m2")

    async def scenario() -> None:
        await worker.start_readings([(0, encode_batch([first]))], [journal.ack("r1")])
        assert worker.sensors.pending == (1, 0)  # processed; its acks wait for its completion
        following = asyncio.create_task(
            worker.start_readings([(0, encode_batch([second]))], [journal.ack("r2")])
        )
        while worker.sensors.get(b"town/air-2") is None:  # processed, the first still writing
            await asyncio.sleep(0.001)
        snapshot = asyncio.create_task(worker.snapshot())
        await asyncio.sleep(0.05)
        assert not following.done() and not snapshot.done() and journal.events == []
        writer.go_on[0].set()  # the first completes; the second's raw write is still held
        await asyncio.wait_for(following, GUARD_S)
        await asyncio.sleep(0.05)
        # The second batch changed air-2 but is not complete: nothing may save that state.
        assert not snapshot.done() and sensors.data == {}
        writer.go_on[1].set()
        await asyncio.wait_for(snapshot, GUARD_S)

    asyncio.run(scenario())
    # The snapshot saved both states only once both batches were complete, then acked both.
    assert journal.events == ["ack r1", "ack r2"]
    assert sorted(r.sensor_id for r in writer.raw) == ["air-1", "air-2"]
    assert set(sensors.data) == {b"town/air-1", b"town/air-2"}


def counts(lines: list[str]) -> list[int]:
    """The count field of each aggregate line."""
    return [int(line.split("count=")[1].split("i,")[0]) for line in lines]


def test_the_timer_snapshots_early_once_the_held_records_reach_half_the_limit() -> None:
    journal = Journal()
    worker = fake_worker()

    async def scenario() -> None:
        now = time.monotonic()  # a snapshot is not due for another snapshot_s (5 s)
        worker.sensors.hold([journal.ack("r1")], size=MAX_HELD_BYTES // 2)
        await worker.maybe_snapshot(now)
        assert journal.events == []
        worker.sensors.hold([journal.ack("r2")], size=1)
        await worker.maybe_snapshot(now)
        assert journal.events == ["ack r1", "ack r2"]

    asyncio.run(scenario())


def test_an_early_snapshot_acks_without_aggregates_and_a_restart_still_writes_them() -> None:
    journal, sensors = Journal(), FakeTable()

    def worker() -> StreamWorker:
        return fake_worker(sensors)

    first = worker()

    async def before_the_crash() -> None:
        await first.handle_readings([(0, encode_batch([reading()]))], [journal.ack("r1")])
        await first.save_sensors(aggregates=False)  # the held records called for it

    asyncio.run(before_the_crash())
    assert journal.events == ["ack r1"] and list(sensors.data) == [b"town/air-1"]
    assert first.writer.aggregates == []
    assert first.sensors.pending == (1, 0)  # still to write: the next snapshot does it
    # The worker dies before that; its successor restores the state, and no reading of the
    # sensor comes again.
    second = worker()

    async def after_the_restart() -> None:
        second.sensors.load(second.tables["sensor"], None)
        await second.snapshot()

    asyncio.run(after_the_restart())
    assert counts(second.writer.aggregates) == [1, 1, 1]  # the 1 m, 15 m and 1 h windows


def test_states_saved_early_are_not_saved_again_until_a_snapshot_writes_their_aggregates() -> None:
    class CountingTable(FakeTable):
        def __init__(self) -> None:
            super().__init__()
            self.rows = 0

        async def put_rows(self, rows: Sequence[Row]) -> list[asyncio.Future[None]]:
            self.rows += len(rows)
            return await super().put_rows(rows)

    journal, sensors = Journal(), CountingTable()
    worker = fake_worker(sensors)

    async def scenario() -> None:
        await worker.handle_readings([(0, encode_batch([reading()]))], [journal.ack("r1")])
        await worker.save_sensors(aggregates=False)
        worker.sensors.hold([journal.ack("r2")])  # a batch of duplicates: no state changed
        await worker.save_sensors(aggregates=False)
        assert sensors.rows == 1 and journal.events == ["ack r1", "ack r2"]
        await worker.save_sensors()
        assert counts(worker.writer.aggregates) == [1, 1, 1] and sensors.rows == 2
        assert worker.sensors.pending == (0, 0)

    asyncio.run(scenario())


def fake_worker(sensors: FakeTable | None = None, writer: FakeWriter | None = None) -> StreamWorker:
    """A worker on fakes: its sensor table ``sensors`` and its InfluxDB ``writer``."""
    return StreamWorker(
        Settings(),
        writer or FakeWriter(),  # type: ignore[arg-type]
        RegistryFile("", 10),
        {n: FakeTopic() for n in ("deadletter", "alerts", "observations", "district")},
        {"sensor": sensors or FakeTable(), "district": FakeTable()},
    )
