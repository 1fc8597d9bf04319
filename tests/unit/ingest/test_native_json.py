"""The native JSON format, as documented in docs/payloads.md."""

import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.decoders import DecodeContext, DecodeError
from ingest.decoders.native_json import decode

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
