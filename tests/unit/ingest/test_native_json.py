"""The native JSON format, as documented in docs/payloads.md."""

import contextlib
import json
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.decoders import DecodeContext, DecodeError
from ingest.decoders.native_json import decode
from urbanpulse.model import validated

RECEIVED = datetime(2026, 11, 27, 10, 0, 5, tzinfo=UTC)
CTX = DecodeContext("town", "air-1", "urbanpulse/town/air-1/json", RECEIVED)


def dumps(document: object) -> bytes:
    return json.dumps(document).encode()


def test_one_reading_as_documented() -> None:
    payload = dumps(
        {
            "time": "2026-11-27T10:00:00Z",
            "quantity": "temperature",
            "value": 21.5,
            "unit": "Cel",
            "id": "msg-7",
        }
    )
    [r] = decode(payload, CTX)
    assert (r.tenant, r.sensor_id, r.quantity, r.value, r.unit) == (
        "town",
        "air-1",
        "temperature",
        21.5,
        "Cel",
    )
    assert r.observed_at == datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert r.received_at == RECEIVED
    assert r.message_id == "msg-7"
    assert r.source_format == "json"


def test_batch_with_epoch_seconds_and_offsets() -> None:
    payload = dumps(
        {
            "readings": [
                {"time": 1795860000, "quantity": "pm2_5", "value": 7, "unit": "ug/m3"},
                {
                    "time": "2026-11-27T11:00:00+01:00",
                    "quantity": "pm10",
                    "value": 9.5,
                    "unit": "ug/m3",
                },
            ]
        }
    )
    first, second = decode(payload, CTX)
    assert first.observed_at == datetime.fromtimestamp(1795860000, tz=UTC)
    assert second.observed_at == datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert first.value == 7.0


def test_time_defaults_to_receipt() -> None:
    [r] = decode(dumps({"quantity": "noise_level", "value": 55, "unit": "dB"}), CTX)
    assert r.observed_at == RECEIVED


def test_derived_ids_are_stable_and_distinct() -> None:
    payload = dumps(
        {
            "readings": [
                {"quantity": "pm2_5", "value": 1, "unit": "ug/m3"},
                {"quantity": "pm10", "value": 2, "unit": "ug/m3"},
            ]
        }
    )
    ids = [r.message_id for r in decode(payload, CTX)]
    assert ids == [r.message_id for r in decode(payload, CTX)]
    assert len(set(ids)) == 2


def test_location() -> None:
    [r] = decode(
        dumps({"quantity": "pm2_5", "value": 1, "unit": "ug/m3", "lat": 52.1, "lon": 5.1}), CTX
    )
    assert r.location is not None and (r.location.lat, r.location.lon) == (52.1, 5.1)


@pytest.mark.parametrize(
    ("payload", "reason", "fragment"),
    [
        (b"{not json", "invalid_json", "JSON"),
        (b"\xff\xfe", "invalid_json", "UTF-8"),
        (b"[1, 2]", "invalid_reading", "object"),
        (b'{"readings": []}', "invalid_reading", "non-empty"),
        (
            b'{"quantity": "temperature", "value": "warm", "unit": "Cel"}',
            "invalid_reading",
            "value",
        ),
        (b'{"quantity": "temperature", "value": true, "unit": "Cel"}', "invalid_reading", "value"),
        (b'{"quantity": "temperature", "value": NaN, "unit": "Cel"}', "invalid_reading", "finite"),
        (b'{"quantity": "temperature", "unit": "Cel"}', "invalid_reading", "value"),
        (
            b'{"time": "2026-11-27T10:00:00", "quantity": "t", "value": 1, "unit": "Cel"}',
            "invalid_reading",
            "time",
        ),
        (b'{"time": -5, "quantity": "t", "value": 1, "unit": "Cel"}', "invalid_reading", "time"),
        (
            b'{"quantity": "t", "value": 1, "unit": "Cel", "colour": "red"}',
            "invalid_reading",
            "colour",
        ),
        (b'{"quantity": "t", "value": 1, "unit": "Cel", "lat": 52}', "invalid_reading", "lat"),
        (
            b'{"quantity": "t", "value": 1, "unit": "Cel", "lat": 99, "lon": 1}',
            "invalid_reading",
            "lat",
        ),
        (
            b'{"readings": [{"quantity": "t", "value": 1, "unit": "Cel"}, {"value": 2}]}',
            "invalid_reading",
            "readings[1]",
        ),
    ],
)
def test_bad_messages_say_why(payload: bytes, reason: str, fragment: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(payload, CTX)
    assert caught.value.reason == reason
    assert fragment in caught.value.detail


@given(st.binary(max_size=300))
def test_any_bytes_give_readings_or_a_decode_error(payload: bytes) -> None:
    try:
        readings = decode(payload, CTX)
    except DecodeError:
        return
    assert readings


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=8,
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["time", "quantity", "value", "unit", "id", "lat", "lon", "readings"]),
        json_values,
        max_size=8,
    )
)
def test_any_json_object_gives_readings_or_a_decode_error(document: dict[str, object]) -> None:
    with contextlib.suppress(DecodeError):
        decode(json.dumps(document).encode(), CTX)


def test_a_device_id_is_kept_and_a_derived_one_is_flagged() -> None:
    given_id, derived = decode(
        dumps(
            {
                "readings": [
                    {"quantity": "pm2_5", "value": 1, "unit": "ug/m3", "id": "dev-1"},
                    {"quantity": "pm10", "value": 2, "unit": "ug/m3"},
                ]
            }
        ),
        CTX,
    )
    assert (given_id.message_id, given_id.derived_id) == ("dev-1", False)
    assert derived.derived_id and derived.message_id.endswith("-1")


def test_one_message_one_digest_an_index_per_reading() -> None:
    items = [{"quantity": "pm10", "value": i, "unit": "ug/m3"} for i in range(2000)]
    readings = decode(dumps({"readings": items}), CTX)
    digests = {r.message_id.rsplit("-", 1)[0] for r in readings}
    assert len(digests) == 1
    assert [r.message_id.rsplit("-", 1)[1] for r in readings] == [str(i) for i in range(2000)]


def test_the_same_bytes_on_another_topic_get_other_ids() -> None:
    payload = dumps({"quantity": "pm10", "value": 1, "unit": "ug/m3"})
    other = DecodeContext("town", "air-2", "urbanpulse/town/air-2/json", RECEIVED)
    assert decode(payload, CTX)[0].message_id != decode(payload, other)[0].message_id


def test_redelivery_and_receipt_time_come_from_the_context() -> None:
    payload = dumps({"quantity": "pm10", "value": 1, "unit": "ug/m3"})
    later = DecodeContext(
        "town", "air-1", "urbanpulse/town/air-1/json", RECEIVED.replace(second=9), redelivered=True
    )
    [first], [again] = decode(payload, CTX), decode(payload, later)
    assert (first.redelivered, again.redelivered) == (False, True)
    assert first.message_id == again.message_id  # the worker recognises the repeat by it
    assert (first.observed_at, again.observed_at) == (RECEIVED, RECEIVED.replace(second=9))


@pytest.mark.parametrize(
    ("field", "value"),
    [("quantity", "temperature\n"), ("unit", "Cel\n"), ("id", ""), ("lat", "52.1")],
)
def test_fields_are_held_to_the_canonical_rules(field: str, value: object) -> None:
    document: dict[str, object] = {"quantity": "temperature", "value": 1, "unit": "Cel"}
    if field == "lat":
        document["lon"] = 5.1
    document[field] = value
    with pytest.raises(DecodeError) as caught:
        decode(dumps(document), CTX)
    assert caught.value.reason == "invalid_reading"
    assert field in caught.value.detail


@pytest.mark.parametrize(("field", "bad"), [("quantity", "Temperature"), ("unit", "Cel\n")])
def test_a_bad_name_after_good_ones_is_refused(field: str, bad: str) -> None:
    """Names are matched once per run of equal names: one that changes is matched again."""
    good = {"quantity": "temperature", "value": 1, "unit": "Cel"}
    items = [good, good, {**good, "unit": "K"}, {**good, field: bad}, good]
    with pytest.raises(DecodeError) as caught:
        decode(dumps({"readings": items}), CTX)
    assert caught.value.reason == "invalid_reading"
    assert caught.value.detail.startswith(f"readings[3]: {field}")


def test_a_batch_over_the_limit_is_refused() -> None:
    items = [{"quantity": "pm10", "value": 1, "unit": "ug/m3"}] * 10_001
    with pytest.raises(DecodeError) as caught:
        decode(dumps({"readings": items}), CTX)
    assert (caught.value.reason, caught.value.detail) == (
        "invalid_reading",
        "a batch holds at most 10000 readings",
    )


readings_like = st.fixed_dictionaries(
    {
        "quantity": st.sampled_from(["temperature", "pm2_5", "x", "Bad", "a" * 70]),
        "value": st.one_of(st.floats(), st.integers(-(10**20), 10**20)),
        "unit": st.sampled_from(["Cel", "ug/m3", "%", "", "a b", "x" * 40]),
    },
    optional={
        "time": st.one_of(
            st.floats(-10, 3e11),
            st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
            st.text(max_size=30),
        ),
        "id": st.text(max_size=210),
        "lat": st.floats(-100, 100),
        "lon": st.floats(-200, 200),
        "alt": st.floats(),
    },
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(readings_like, min_size=1, max_size=4), st.booleans())
def test_every_reading_made_passes_the_models_full_validation(
    items: list[dict[str, object]], batch: bool
) -> None:
    """The decoder builds readings without validated() (cost): it must never make one that
    validated() would refuse."""
    document = {"readings": items} if batch else items[0]
    try:
        readings = decode(json.dumps(document).encode(), CTX)
    except DecodeError:
        return
    for reading in readings:
        assert validated(**msgspec.structs.asdict(reading)) == reading
