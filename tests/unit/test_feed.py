"""The observations topic's records: runs of the stored readings, for the live feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.streams.helpers import as_published, published
from urbanpulse.feed import decode_feed, feed_records, runs_of
from urbanpulse.model import Location, Reading
from urbanpulse.wire import MAX_RECORD_BYTES, MAX_RECORD_READINGS, encode_batch

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
PLACES = [None, Location(lat=52.1, lon=5.1), Location(lat=52.1, lon=5.1, alt=3.0)]


def reading(sensor: str, quantity: str, k: int, value: float, **changes: object) -> Reading:
    return msgspec.structs.replace(
        Reading(
            tenant="town",
            sensor_id=sensor,
            quantity=quantity,
            value=value,
            unit="ug/m3",
            observed_at=T0 + timedelta(seconds=k),
            received_at=T0,
            source_format="json",
            message_id=f"m{k}",
        ),
        **changes,
    )


stored = st.lists(
    st.builds(
        reading,
        st.sampled_from(["a", "b"]),
        st.sampled_from(["pm2_5", "pm10"]),
        st.integers(0, 100),
        st.floats(-1e6, 1e6, allow_nan=False),
        unit=st.sampled_from(["ug/m3", "mg/m3"]),
        location=st.sampled_from(PLACES),
        quality_flags=st.sampled_from([(), ("spike",), ("spike", "gap")]),
    ),
    max_size=60,
)


@given(stored)
def test_the_feed_gives_back_each_reading_in_order(readings: list[Reading]) -> None:
    assert published(feed_records(readings)) == as_published(readings)


def test_a_messages_readings_are_one_run_of_a_few_bytes_a_reading() -> None:
    message = [reading("a", "pm2_5", k, 10.0 + k) for k in range(50)]
    [run] = runs_of(message)
    assert (run.sensor_id, len(run.times), run.values[:2]) == ("a", 50, [10.0, 11.0])
    [value] = feed_records(message)
    assert len(value) < 35 * len(message)  # about 30; the readings whole: about 200 each
    assert len(value) * 6 < len(encode_batch(message))


def test_records_stay_under_kafkas_limit() -> None:
    # Every reading a run of its own (names long, positions apart): the worst case in bytes.
    readings = [
        reading("s" * 120 + str(k), "pm2_5", k, 1.0, location=Location(lat=k / 10_000, lon=5.0))
        for k in range(3 * MAX_RECORD_READINGS)
    ]
    values = feed_records(readings)
    assert len(values) >= 3 and all(len(v) <= MAX_RECORD_BYTES for v in values)
    assert published(values) == as_published(readings)


def test_what_is_not_a_feed_record_is_none() -> None:
    # An older worker's records of whole readings, garbage, a run with a value missing: the
    # reader decodes them with urbanpulse.wire.decode_record, which refuses the garbage.
    assert decode_feed(encode_batch([reading("a", "pm2_5", 0, 1.0)])) is None
    assert decode_feed(reading("a", "pm2_5", 0, 1.0).to_bytes()) is None
    assert decode_feed(b"not json") is None
    run = ["town", "a", "pm2_5", "ug/m3", None, [], ["2026-11-27T10:00:00Z"], []]
    assert decode_feed(msgspec.json.encode({"runs": [run]})) is None
    run[-1] = [1.5]
    [decoded] = decode_feed(msgspec.json.encode({"runs": [run]})) or []
    assert (decoded.times, decoded.values) == ([T0], [1.5])
