"""Sensor.Community (airRohr) push bodies: the firmware's real messages, value types, units."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.aliases import DEFAULT_TABLE, IGNORE
from ingest.decoders import DecodeError
from ingest.decoders.sensor_community import decode

from ._vectors import RECEIVED, ctx, expected, raw

CTX = ctx("sensorcommunity", sensor="esp8266-1497234")
PUSH_FILES = [
    "sensor-community/push-sensor-data-v1-sds011-serial-example-2016.json",
    "sensor-community/push-sensor-data-v1-dht22-serial-example-2016.json",
    "sensor-community/madavi-data-php-combined-serial-example-2016.json",
    "sensor-community/push-custom-api-esp8266id-issue127.json",
    "sensor-community/node-local-data-json-issue342.json",
]
CANONICAL = {
    "p1": "pm10",
    "sds_p1": "pm10",
    "p2": "pm2_5",
    "sds_p2": "pm2_5",
    "temperature": "temperature",
    "humidity": "relative_humidity",
    "signal": "rssi",
}


@pytest.mark.parametrize("file", PUSH_FILES)
def test_push_bodies_give_the_values_the_source_prints(shared_dir: Path, file: str) -> None:
    want = [
        w
        for w in expected(shared_dir, file)["readings"]
        if DEFAULT_TABLE.canonical(w["value_type"]) != IGNORE
    ]
    got = decode(raw(shared_dir, file), CTX)
    assert [(r.quantity, r.value) for r in got] == [
        (CANONICAL[w["value_type"].lower()], float(w["value"])) for w in want
    ]
    assert all(r.observed_at == RECEIVED and r.sensor_id == "esp8266-1497234" for r in got)


def test_units(shared_dir: Path) -> None:
    got = decode(raw(shared_dir, "sensor-community/node-local-data-json-issue342.json"), CTX)
    assert {r.quantity: r.unit for r in got} == {
        "pm10": "ug/m3",
        "pm2_5": "ug/m3",
        "temperature": "Cel",
        "relative_humidity": "%",
        "rssi": "dB[mW]",
    }


def test_read_api_shape_with_timestamps_and_location(shared_dir: Path) -> None:
    file = "sensor-community/api-v1-sensor-7373-response-issue342.json"
    want = expected(shared_dir, file)
    got = decode(raw(shared_dir, file), CTX)
    rows = [(row["timestamp"], k, float(row[k])) for row in want["readings"] for k in ("P1", "P2")]
    assert [(r.observed_at.strftime("%Y-%m-%d %H:%M:%S"), r.quantity, r.value) for r in got] == [
        (t, CANONICAL[k.lower()], v) for t, k, v in rows
    ]
    loc = want["location"]
    assert {(r.location.lat, r.location.lon) for r in got if r.location} == {
        (float(loc["latitude"]), float(loc["longitude"]))
    }


def test_bme280_pressure_in_pa_becomes_hpa() -> None:
    body = {
        "sensordatavalues": [
            {"value_type": "BME280_pressure", "value": "98876.53"},
            {"value_type": "BME280_temperature", "value": "-3.20"},
            {"value_type": "GPS_date", "value": "11/27/2026"},
        ]
    }
    got = decode(json.dumps(body).encode(), CTX)
    assert [(r.quantity, r.value, r.unit) for r in got] == [
        ("pressure", pytest.approx(988.7653), "hPa"),
        ("temperature", -3.2, "Cel"),
    ]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"nope", "invalid_json"),
        (b"{}", "invalid_payload"),
        (b"[]", "invalid_payload"),
        (b'{"sensordatavalues": {}}', "invalid_payload"),
        (b'{"sensordatavalues": [{"value": "1"}]}', "invalid_payload"),
        (b'{"sensordatavalues": ["x"]}', "invalid_payload"),
    ],
)
def test_bad_bodies_say_why(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(payload, CTX)
    assert caught.value.reason == reason


@given(st.binary(max_size=200))
def test_any_bytes_give_readings_or_a_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(payload, CTX)


entry = st.fixed_dictionaries(
    {},
    optional={
        "value_type": st.one_of(st.text(max_size=12), st.sampled_from(["SDS_P1", "signal", "x"])),
        "value": st.one_of(
            st.text(max_size=8), st.floats(), st.integers(), st.booleans(), st.none()
        ),
    },
)


@given(st.lists(entry, max_size=6), st.one_of(st.none(), st.text(max_size=25), st.integers()))
def test_any_sensordatavalues_give_readings_or_a_decode_error(
    entries: list[dict[str, object]], timestamp: object
) -> None:
    with contextlib.suppress(DecodeError):
        decode(json.dumps({"sensordatavalues": entries, "timestamp": timestamp}).encode(), CTX)
