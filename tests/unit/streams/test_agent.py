"""The Faust agents with ``agent.test_context()``: no Kafka, no InfluxDB (fakes at the seams)."""

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import streams.app
from streams.app import StreamWorker, create_app
from streams.state import decode_sensor
from tests.unit.streams.helpers import (
    T0,
    FakeTable,
    FakeTopic,
    FakeWriter,
    as_published,
    published,
    reading,
    series,
)
from urbanpulse.model import DeadLetter
from urbanpulse.registry import RegistryFile
from urbanpulse.settings import Settings
from urbanpulse.wire import MAX_RECORD_BYTES, encode_batch


class RefusingWriter(FakeWriter):
    """InfluxDB refusing every point of one sensor for good (a 4xx, not retried)."""

    def write(self, readings: list[Any], labels: Any = None) -> None:
        if any(r.sensor_id == "refused" for r in readings):
            raise ValueError("422: field type conflict")
        super().write(readings, labels)


def run_agent(
    values: list[bytes],
    partition: int = 1,
    writer: Any = None,
    before_snapshot: Callable[[StreamWorker], None] | None = None,
) -> Any:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return _run_agent(loop, values, partition, writer or FakeWriter(), before_snapshot)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _run_agent(
    loop: asyncio.AbstractEventLoop,
    values: list[bytes],
    partition: int,
    writer: Any,
    before_snapshot: Callable[[StreamWorker], None] | None,
) -> Any:
    settings = Settings()
    app = create_app(settings)
    worker = app.urbanpulse_worker
    worker.writer = writer
    worker.topics = {
        name: FakeTopic() for name in ("deadletter", "alerts", "district", "observations")
    }
    worker.tables = {"sensor": FakeTable(), "district": FakeTable()}
    agent = app.agents["streams.app.store_readings"]

    async def feed() -> None:
        async with agent.test_context() as agent_test:
            for value in values:
                await agent_test.put(value, key=b"k", partition=partition)
            while worker.received < len(values):
                await asyncio.sleep(0.05)
            await worker.settle()
            if before_snapshot is not None:
                before_snapshot(worker)
            await worker.snapshot()  # as the snapshot timer would (it does not run here)

    loop.run_until_complete(asyncio.wait_for(feed(), 30))
    # test_context builds (never starts) a Kafka consumer whose thread owns an idle loop
    consumer = app._consumer
    if consumer is not None:
        consumer._thread.thread_loop.close()
    return worker


def test_agent_stores_flags_aggregates_and_dead_letters() -> None:
    good = series([10, 20, 600])
    values = [r.to_bytes() for r in good]
    values += [
        good[0].to_bytes(),
        reading(value=-1, message_id="neg", observed_at=T0 + timedelta(hours=1)).to_bytes(),
        b"{oops",
    ]
    worker = run_agent(values)
    assert [r.value for r in worker.writer.raw] == [10, 20, 600]
    assert worker.writer.raw[2].quality_flags == ("spike",)
    assert worker.duplicates == 1
    reasons = [
        DeadLetter.model_validate_json(v).reason for _, v in worker.topics["deadletter"].sent
    ]
    assert sorted(reasons) == ["invalid_reading", "out_of_range"]
    assert all(
        DeadLetter.model_validate_json(v).stage == "streams"
        for _, v in worker.topics["deadletter"].sent
    )
    hour = [p for p in worker.writer.aggregates if "window=1h" in p]
    assert hour[-1].startswith(
        "aggregate,privacy=open,quantity=pm2_5,scope=sensor,sensor_id=air-1,tenant=town"
    )
    assert "count=3i" in hour[-1] and "max=600" in hour[-1]
    partition, raw = worker.tables["sensor"].data[b"town/air-1"]
    assert partition == 1 and decode_sensor(raw).sensor_id == "air-1"


def test_held_acks_do_not_keep_the_records_payloads() -> None:
    held: list[Any] = []

    def look(worker: StreamWorker) -> None:
        held.extend(ack.args[0] for ack in worker.sensors._held)  # partial(stream.ack, event)

    values = [r.to_bytes() for r in series([10, 20, 30])]
    worker = run_agent(values, before_snapshot=look)
    assert len(held) == len(values)  # every record's ack waited for the snapshot...
    assert all(e.value is None and e.message.value is None for e in held)  # ...without its bytes
    assert [r.value for r in worker.writer.raw] == [10, 20, 30]
    assert worker.sensors.pending == (0, 0)  # the snapshot released them


def test_a_sensor_silent_for_longer_than_the_setting_is_forgotten_memory_and_changelog() -> None:
    # Issue 15: worker state stays bounded however many sensor ids ever reported.
    worker = run_agent([reading(sensor_id="gone").to_bytes(), reading(sensor_id="here").to_bytes()])
    heard_gone = worker.sensors.get(b"town/gone").last_received_us
    # "here" reports again six days later, "gone" never does.
    worker.sensors.get(b"town/here").last_received_us = heard_gone + 6 * 86_400_000_000

    async def a_week_later() -> None:
        await worker.check_stale({1}, heard_gone + 7 * 86_400_000_000 + 1)
        await worker.snapshot()

    asyncio.run(a_week_later())
    assert worker.sensors.get(b"town/gone") is None
    assert worker.sensors.get(b"town/here") is not None
    assert worker.tables["sensor"].data[b"town/gone"] == (1, None)  # a tombstone


def test_agent_publishes_exactly_the_stored_readings_to_the_observations_topic() -> None:
    good = series([10, 20, 600])
    bad = reading(value=-1, message_id="neg", observed_at=T0 + timedelta(hours=1))
    worker = run_agent([r.to_bytes() for r in good] + [good[0].to_bytes(), bad.to_bytes()])
    sent = worker.topics["observations"].sent
    # one record per source partition holding the batch's readings (urbanpulse.feed), as
    # stored (flagged); no duplicate, no dead letter
    assert [key for key, _ in sent] == [b"readings-1"]
    feed = published(value for _, value in sent)
    assert feed == as_published(worker.writer.raw) and len(feed) == 3
    assert feed[2][-1] == ("spike",)


def test_a_reading_influxdb_refuses_is_not_published_to_the_observations_topic() -> None:
    kept, refused = reading(message_id="ok"), reading(sensor_id="refused", message_id="no")
    worker = run_agent([kept.to_bytes(), refused.to_bytes()], writer=RefusingWriter())
    sent = published(v for _, v in worker.topics["observations"].sent)
    assert [r[1] for r in sent] == ["air-1"] == [r.sensor_id for r in worker.writer.raw]
    reasons = [DeadLetter.model_validate_json(v) for _, v in worker.topics["deadletter"].sent]
    assert [letter.reason for letter in reasons] == ["influx_rejected"]


def test_a_batchs_raw_points_are_written_in_parts_and_each_part_keeps_its_refusals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class PartsWriter(RefusingWriter):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[int] = []

        def write(self, readings: list[Any], labels: Any = None) -> None:
            self.parts.append(len(readings))
            super().write(readings, labels)

    monkeypatch.setattr(streams.app, "RAW_PART", 2)
    names = ["s0", "s1", "s2", "refused", "s4", "s5", "s6"]
    batch = encode_batch([reading(sensor_id=name, message_id=name) for name in names])
    worker = run_agent([batch], writer=PartsWriter())
    # Parts of two sensors' readings as they were processed (2, 2, 2, 1); the part holding
    # the refused point is then halved (1, 1). The parts run at once: their order varies.
    assert sorted(worker.writer.parts) == [1, 1, 1, 2, 2, 2]
    kept = [n for n in names if n != "refused"]
    assert sorted(r.sensor_id for r in worker.writer.raw) == kept
    sent = published(v for _, v in worker.topics["observations"].sent)
    assert [r[1] for r in sent] == kept  # in the batch's order, whatever the writes'
    letters = [DeadLetter.model_validate_json(v) for _, v in worker.topics["deadletter"].sent]
    assert [letter.reason for letter in letters] == ["influx_rejected"]


def test_agent_sends_alerts_to_kafka_and_influx() -> None:
    batt = [
        reading(
            quantity="battery_level",
            unit="%",
            value=v,
            message_id=f"b{i}",
            observed_at=reading().observed_at + timedelta(minutes=i),
        )
        for i, v in enumerate([50, 10, 12, 40])
    ]
    worker = run_agent([r.to_bytes() for r in batt])
    events = [json.loads(v) for _, v in worker.topics["alerts"].sent]
    assert [(e["rule"], e["state"], e["value"]) for e in events] == [
        ("low_battery", "open", 10.0),
        ("low_battery", "closed", 10.0),
    ]
    alerts = [p for p in worker.writer.aggregates if p.startswith("alert,")]
    assert len(alerts) == 2 and 'state="closed"' in alerts[-1]


def test_a_batch_of_thousands_of_readings_goes_out_in_records_under_kafkas_limit() -> None:
    # Found by benchmarks/throughput.py at 50 readings per message: the observations record of
    # a big batch was 1.17 MB, Kafka refused it, and the worker crashed on every restart.
    readings = [
        reading(sensor_id=f"s{i % 1000}", observed_at=T0 + timedelta(seconds=i // 1000))
        for i in range(3000)
    ]
    worker = StreamWorker(
        Settings(),
        FakeWriter(),
        RegistryFile("", 10),
        {n: FakeTopic() for n in ("deadletter", "alerts", "observations", "district")},
        {"sensor": FakeTable(), "district": FakeTable()},
    )
    batch = [(1, encode_batch(readings[i : i + 1000])) for i in range(0, 3000, 1000)]
    asyncio.run(worker.handle_readings(batch))
    sent = worker.topics["observations"].sent
    assert len(sent) >= 3 and all(len(value) <= MAX_RECORD_BYTES for _, value in sent)
    assert published(v for _, v in sent) == as_published(worker.writer.raw)
    assert len(worker.writer.raw) == 3000
