"""Kafka records of a batch: one per partition, every reading once, per-sensor order kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ingest.records import Message, confirmations, plan_records
from urbanpulse.model import Reading
from urbanpulse.wire import decode_record, partition_of

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def reading(sensor: str, n: int, tenant: str = "town") -> Reading:
    moment = T0 + timedelta(seconds=n)
    return Reading(
        tenant=tenant,
        sensor_id=sensor,
        quantity="temperature",
        value=float(n),
        unit="Cel",
        observed_at=moment,
        received_at=moment,
        source_format="json",
        message_id=f"m-{n}",
    )


def test_one_record_per_partition_confirming_each_message_once() -> None:
    messages = [
        Message(0, [reading("a", 0), reading("a", 1)]),
        Message(1, [reading("b", 2)]),
        Message(2, [reading("a", 3)]),
    ]
    records = plan_records(messages, 1)
    [record] = records
    assert record.partition == 0 and record.readings == 4
    assert record.tokens == (0, 1, 2)
    assert [r.message_id for r in decode_record(record.value).readings] == [
        "m-0",
        "m-1",
        "m-2",
        "m-3",
    ]
    assert confirmations(records) == {0: 1, 1: 1, 2: 1}


def test_a_message_with_sensors_on_two_partitions_waits_for_both_records() -> None:
    a, b = "sensor-1", "sensor-4"
    assert partition_of(reading(a, 0).key, 2) != partition_of(reading(b, 0).key, 2)
    records = plan_records([Message(7, [reading(a, 0), reading(b, 1)])], 2)
    assert sorted(r.partition for r in records) == [0, 1]
    assert confirmations(records) == {7: 2}
    for record in records:
        for r in decode_record(record.value).readings:
            assert partition_of(r.key, 2) == record.partition


def test_large_batches_are_split_by_count_and_by_size() -> None:
    messages = [Message(i, [reading("a", i)]) for i in range(25)]
    by_count = plan_records(messages, 1, max_readings=10)
    assert [r.readings for r in by_count] == [10, 10, 5]
    by_size = plan_records(messages, 1, max_bytes=2_000)
    assert all(len(r.value) <= 2_000 for r in by_size) and len(by_size) > 1
    assert sum(r.readings for r in by_size) == 25
    assert confirmations(by_size) == {i: 1 for i in range(25)}


def test_messages_without_readings_need_no_record() -> None:
    assert plan_records([Message(0, [])], 4) == []


@given(
    st.lists(st.lists(st.sampled_from("abcdefgh"), max_size=6), max_size=30),
    st.integers(1, 7),
    st.integers(1, 8),
)
def test_every_reading_once_in_its_sensors_partition_in_arrival_order(
    sensors: list[list[str]], partitions: int, max_readings: int
) -> None:
    counter = iter(range(10_000))
    messages = [
        Message(token, [reading(s, next(counter)) for s in message])
        for token, message in enumerate(sensors)
    ]
    records = plan_records(messages, partitions, max_readings=max_readings)
    written = [(rec, r) for rec in records for r in decode_record(rec.value).readings]
    assert sorted(r.message_id for _, r in written) == sorted(
        r.message_id for m in messages for r in m.readings
    )
    for rec, r in written:
        assert rec.partition == partition_of(r.key, partitions)
        assert int(r.message_id[2:]) in {
            int(x.message_id[2:]) for m in messages if m.token in rec.tokens for x in m.readings
        }
    for sensor in "abcdefgh":  # per-sensor order: records in order, readings in order
        order = [int(r.message_id[2:]) for _, r in written if r.sensor_id == sensor]
        assert order == sorted(order)
    needs = confirmations(records)
    for m in messages:
        holding = {
            rec.partition
            for rec, r in written
            if r.message_id in {x.message_id for x in m.readings}
        }
        assert (needs[m.token] > 0) == bool(m.readings)
        assert needs[m.token] >= len(holding)
