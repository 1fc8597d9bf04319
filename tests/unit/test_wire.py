"""Kafka records of readings: batches in, readings out, bad readings kept apart."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from urbanpulse.model import InvalidReading, Reading, validated
from urbanpulse.wire import (
    MAX_RECORD_BYTES,
    MAX_RECORD_READINGS,
    decode_record,
    encode_batch,
    encode_batches,
    partition_of,
)

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def reading(sensor: str = "air-1", value: float = 1.0) -> Reading:
    return Reading(
        tenant="town",
        sensor_id=sensor,
        quantity="pm2_5",
        value=value,
        unit="ug/m3",
        observed_at=T0,
        received_at=T0,
        source_format="json",
        message_id="m",
    )


def test_a_batch_comes_back_in_order() -> None:
    readings = [reading(f"s{i}", float(i)) for i in range(5)]
    decoded = decode_record(encode_batch(readings))
    assert decoded.readings == readings and decoded.refused == []


def test_a_single_reading_record_is_still_read() -> None:
    assert decode_record(reading().to_bytes()).readings == [reading()]


def test_one_bad_reading_does_not_spoil_its_batch() -> None:
    good, bad = reading("ok"), reading("a b")  # a space: not a valid sensor id
    decoded = decode_record(encode_batch([good, bad, good]))
    assert decoded.readings == [good, good]
    assert len(decoded.refused) == 1 and "sensor_id" in decoded.refused[0].reason
    assert b'"a b"' in decoded.refused[0].value


# Each name a valid value or two, and values that break its pattern.
NAMES = {
    "tenant": (["town", "city"], ["a b", "x\n", ""]),
    "sensor_id": (["air-1", "air-2"], ["a/b", "a b", "air-1\n"]),
    "quantity": (["pm2_5", "pm10"], ["PM25", "pm2_5\n"]),
    "unit": (["ug/m3", "%"], ["u g", ""]),
    "probe": ([None, "1"], ["a b", "1\n"]),
}
# A row: each name valid, or at most one broken (a reading breaking several is refused
# whichever name the decoder looks at first; one broken name is what tells runs apart).
rows = st.lists(
    st.builds(
        lambda names, broken: {**names, **broken},
        st.fixed_dictionaries({name: st.sampled_from(good) for name, (good, _) in NAMES.items()}),
        st.just({}) | st.sampled_from([{name: b} for name, (_, bad) in NAMES.items() for b in bad]),
    ),
    min_size=1,
    max_size=8,
)


@given(rows)
def test_a_batch_refuses_exactly_the_readings_whose_names_break_a_pattern(
    names: list[dict[str, str | None]],
) -> None:
    """Names are matched once per run of equal names: a bad name after a good run, or a good
    one after a bad, is still told apart."""
    readings = [msgspec.structs.replace(reading(), **row) for row in names]

    def valid(r: Reading) -> bool:
        try:
            validated(**msgspec.structs.asdict(r))
        except InvalidReading:
            return False
        return True

    decoded = decode_record(encode_batch(readings))
    assert decoded.readings == [r for r in readings if valid(r)]
    assert [f.value for f in decoded.refused] == [r.to_bytes() for r in readings if not valid(r)]


def test_a_value_out_of_bounds_is_refused_with_its_own_bytes_and_the_rest_kept() -> None:
    good, huge = reading("ok", 2.0), reading("big", 1e301)  # decodes; the model's check fails
    decoded = decode_record(encode_batch([good, huge, good]))
    assert decoded.readings == [good, good]
    [refused] = decoded.refused
    assert "1e300" in refused.reason and refused.value == huge.to_bytes()


def test_garbage_is_refused_whole() -> None:
    decoded = decode_record(b"\x00not json")
    assert decoded.readings == [] and decoded.refused[0].value == b"\x00not json"


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=1, max_value=64))
def test_a_key_always_maps_to_one_valid_partition(key: bytes, partitions: int) -> None:
    assert 0 <= partition_of(key, partitions) < partitions
    assert partition_of(key, partitions) == partition_of(bytes(key), partitions)


def test_a_big_batch_becomes_records_under_kafkas_limit_in_order() -> None:
    # 50 readings per message make worker batches of thousands of readings; one observations
    # record of them was over Kafka's 1 MB and crashed the worker (found by throughput.py).
    many = [reading(f"s{i % 7}", float(i)) for i in range(2 * MAX_RECORD_READINGS + 500)]
    long = [  # about 580 bytes each: a thousand of them are over MAX_RECORD_BYTES
        msgspec.structs.replace(reading("x" * 128, float(i)), message_id="m" * 256)
        for i in range(MAX_RECORD_READINGS)
    ]
    for readings, parts in ((many, 3), (long, 2)):
        values = encode_batches(readings)
        assert len(values) == parts
        assert all(len(v) <= MAX_RECORD_BYTES for v in values)
        assert [r for v in values for r in decode_record(v).readings] == readings


def test_fields_at_their_defaults_are_left_out_and_read_back_either_way() -> None:
    # Since 2026-12-07 a record leaves out a reading's fields at their defaults (no flags,
    # position or probe; an id of its own; not redelivered): a fifth fewer bytes for Kafka.
    plain, flagged = reading("a"), msgspec.structs.replace(reading("b"), quality_flags=("spike",))
    value = encode_batch([plain, flagged])
    for name in ("location", "probe", "derived_id", "redelivered"):
        assert f'"{name}"'.encode() not in value
    assert value.count(b'"quality_flags"') == 1
    spelled_out = {  # what workers before wrote: every field
        "readings": [
            {f: getattr(r, f) for f in Reading.__struct_fields__} for r in (plain, flagged)
        ]
    }
    older = msgspec.json.encode(spelled_out)
    assert len(value) < len(older)
    assert decode_record(value).readings == decode_record(older).readings == [plain, flagged]
