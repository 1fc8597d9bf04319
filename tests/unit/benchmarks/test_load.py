"""The throughput run's load: its messages, and the exactly-once tally against InfluxDB."""

import json
from datetime import UTC, datetime

import pytest

from benchmarks.load import LoadShape, altered, epoch_text, reading_json, tally
from ingest.routing import decode_message

SHAPE = LoadShape(
    "t1", sensors=3, per_message=2, interval_us=1_000_000, anchor_us=1_700_000_000_000_000
)


def test_epoch_text_is_exact_to_the_microsecond() -> None:
    assert epoch_text(1_700_000_000_000_001) == "1700000000.000001"
    assert epoch_text(5) == "0.000005"


def test_messages_round_robin_over_sensors_with_the_next_rounds() -> None:
    lines = SHAPE.lines(0, 4).decode().splitlines()
    topics = [line.split("\t")[0] for line in lines]
    assert topics == [
        "urbanpulse/t1/s-00000/json",
        "urbanpulse/t1/s-00001/json",
        "urbanpulse/t1/s-00002/json",
        "urbanpulse/t1/s-00000/json",
    ]
    fourth = json.loads(lines[3].split("\t")[1])
    times = [r["time"] for r in fourth["readings"]]
    assert times == [1_700_000_002.0, 1_700_000_003.0]  # sensor 0's rounds 2 and 3


def test_a_message_decodes_to_readings_at_the_published_times() -> None:
    topic, payload = SHAPE.line(4).decode().rstrip("\n").split("\t")
    decoded = decode_message(topic, payload.encode(), datetime.now(UTC), 1 << 20)
    assert decoded.dead_letter is None
    got = {int(r.observed_at.timestamp() * 1_000_000) for r in decoded.readings}
    assert got == SHAPE.expected(5)["s-00001"] - SHAPE.expected(2)["s-00001"]


def test_single_reading_messages_are_bare_readings() -> None:
    one = LoadShape("t1", sensors=2, per_message=1, interval_us=500_000, anchor_us=0)
    body = json.loads(one.line(3).decode().split("\t")[1])
    assert body == json.loads(reading_json(500_000, 15.8))


def test_expected_follows_from_the_messages_published() -> None:
    expected = SHAPE.expected(4)  # sensor 0 got two messages, sensors 1 and 2 one each
    assert {k: len(v) for k, v in expected.items()} == {"s-00000": 4, "s-00001": 2, "s-00002": 2}
    assert SHAPE.expected(2).keys() == {"s-00000", "s-00001"}
    assert SHAPE.expected(0) == {}


def test_tally_counts_lost_and_duplicates_exactly() -> None:
    expected = {"a": {1, 2, 3}, "b": {10}}
    stored = {
        "a": [1, 2, 2, 99],  # 3 lost; 2 in two series; 99 never published
        "b": [10],
        "c": [5],  # a sensor that never published
    }
    result = tally(expected, stored)
    assert (result.published, result.stored) == (4, 6)
    assert result.lost == 1 and result.lost_by_sensor == {"a": 1}
    assert result.duplicates == 3 and result.duplicates_by_sensor == {"a": 2, "c": 1}


def test_tally_of_a_perfect_run() -> None:
    result = tally({"a": {1, 2}}, {"a": [2, 1]})
    assert (result.lost, result.duplicates, result.stored) == (0, 0, 2)


def test_expected_values_are_the_values_published() -> None:
    values = SHAPE.expected_values(1)["s-00000"]
    body = json.loads(SHAPE.line(0).decode().split("\t")[1])
    assert sorted(values.values()) == sorted(r["value"] for r in body["readings"])
    assert set(values) == SHAPE.expected(1)["s-00000"]


def test_altered_counts_readings_stored_twice_or_with_another_value() -> None:
    expected = {"a": {1: 15.0, 2: 15.7, 3: 16.4}}
    stored = {
        "a": [(1, 15.0), (2, 15.7), (2, 15.7), (3, 99.0), (4, 1.0)],  # 2 twice, 3 changed
        "z": [(1, 1.0)],  # not published at all: tally's business, not altered's
    }
    assert altered(expected, stored) == {"a": 2}
    assert altered(expected, {"a": [(1, 15.0), (2, 15.7), (3, 16.4)]}) == {}


@pytest.mark.parametrize(("sensors", "per_message"), [(3, 1), (7, 50), (1000, 2)])
def test_lines_are_each_reading_s_json_with_its_value(sensors: int, per_message: int) -> None:
    shape = LoadShape("t", sensors, per_message, 1_000_000, 1_796_000_000_123_456)
    expected = []
    for m in range(2 * sensors + 5):  # across blocks
        k, first = m % sensors, m // sensors * per_message
        items = [
            reading_json(shape.time_us(r), shape.value(k, r))
            for r in range(first, first + per_message)
        ]
        body = items[0] if per_message == 1 else '{"readings":[' + ",".join(items) + "]}"
        expected.append(f"urbanpulse/t/{shape.sensor_id(k)}/json\t{body}\n".encode())
    assert shape.lines(0, len(expected)) == b"".join(expected)
    assert shape.lines(sensors, sensors + 3) == b"".join(expected[sensors : sensors + 3])
