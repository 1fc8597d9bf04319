"""Cayenne LPP: the myDevices and TTS examples, multi-channel, GPS, negatives, every type."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.decoders import DecodeError
from ingest.decoders.cayenne_lpp import TYPES, decode, parse

from ._vectors import RECEIVED, ctx, load

CTX = ctx("lpp", sensor="node-7")
AXES = {"x": "acceleration_x", "y": "acceleration_y", "z": "acceleration_z"}
GPS = {"latitude": "latitude", "longitude": "longitude", "altitude": "altitude"}
TYPE_QUANTITY = {"Temperature": "temperature"}


def expected_values(item: dict) -> list[tuple[str, str, str, float]]:
    """(sensor, probe, quantity, value) the source's expected entry stands for.

    The device is the sensor; the LPP channel is the probe (docs/payloads.md, identity).
    """
    sensor, probe = "node-7", str(item["channel"])
    value = item["value"]
    if item["type"] == "Accelerometer":
        return [(sensor, probe, AXES[k], v) for k, v in value.items()]
    if item["type"] == "GPS":
        return [(sensor, probe, GPS[k], v) for k, v in value.items()]
    return [(sensor, probe, TYPE_QUANTITY[item["type"]], value)]


def seen(readings: list) -> list[tuple[str, str | None, str, float]]:
    return [(r.sensor_id, r.probe, r.quantity, r.value) for r in readings]


@pytest.mark.parametrize(
    "file", ["cayenne-lpp/two-temperature-sensors.json", "cayenne-lpp/gps.json"]
)
def test_mydevices_examples(shared_dir: Path, file: str) -> None:
    vector = load(shared_dir, file)
    payload = bytes.fromhex(vector["hex"])
    assert base64.b64decode(vector["base64"]) == payload
    got = decode(payload, CTX)
    want = [t for item in vector["expected"] for t in expected_values(item)]
    assert seen(got) == [(s, p, q, pytest.approx(v)) for s, p, q, v in want]
    assert all(r.observed_at == RECEIVED and r.source_format == "lpp" for r in got)


def test_two_frames_with_negative_values(shared_dir: Path) -> None:
    vector = load(shared_dir, "cayenne-lpp/temperature-and-accelerometer-two-frames.json")
    for frame in vector["frames"]:
        got = decode(bytes.fromhex(frame["hex"]), CTX)
        want = [t for item in frame["expected"] for t in expected_values(item)]
        assert seen(got) == [(s, p, q, pytest.approx(v)) for s, p, q, v in want]


def test_units_are_ucum(shared_dir: Path) -> None:
    vector = load(shared_dir, "cayenne-lpp/temperature-and-accelerometer-two-frames.json")
    [temp] = decode(bytes.fromhex(vector["frames"][0]["hex"]), CTX)
    accel = decode(bytes.fromhex(vector["frames"][1]["hex"]), CTX)
    assert temp.unit == "Cel"
    assert {r.unit for r in accel} == {"[g]"}


def test_tts_barometer_example(shared_dir: Path) -> None:
    vector = load(shared_dir, "cayenne-lpp/tts-barometer-temperature-ch0.json")
    got = decode(base64.b64decode(vector["base64"]), CTX)
    by_field = {"barometric_pressure_0": "pressure", "temperature_0": "temperature"}
    assert seen(got) == [
        ("node-7", str(w["channel"]), by_field[w["field"]], pytest.approx(w["value"], abs=1e-6))
        for w in vector["expected"]
    ]
    assert [r.unit for r in got] == ["hPa", "Cel"]


def test_gps_locates_every_reading_of_the_frame() -> None:
    # temperature -0.1 °C on channel 2, then GPS on channel 1: south-west, below sea level
    payload = (
        bytes.fromhex("0267FFFF")
        + bytes.fromhex("0188")
        + (
            (-338_688).to_bytes(3, "big", signed=True)
            + (-1_512_093).to_bytes(3, "big", signed=True)
            + (-250).to_bytes(3, "big", signed=True)
        )
    )
    got = decode(payload, CTX)
    assert seen(got) == [
        ("node-7", "2", "temperature", -0.1),
        ("node-7", "1", "latitude", -33.8688),
        ("node-7", "1", "longitude", -151.2093),
        ("node-7", "1", "altitude", -2.5),
    ]
    assert {(r.location.lat, r.location.lon, r.location.alt) for r in got if r.location} == {
        (-33.8688, -151.2093, -2.5)
    }
    assert all(r.location is not None for r in got)


def test_unix_time_sets_the_observation_time() -> None:
    frame = parse(
        bytes.fromhex("0085") + (1_795_860_000).to_bytes(4, "big") + bytes.fromhex("016864")
    )
    assert frame.time is not None and frame.time.timestamp() == 1_795_860_000
    [r] = decode(
        bytes.fromhex("0085") + (1_795_860_000).to_bytes(4, "big") + bytes.fromhex("016864"), CTX
    )
    assert (r.quantity, r.value, r.unit, r.observed_at) == (
        "relative_humidity",
        50.0,
        "%",
        frame.time,
    )


@pytest.mark.parametrize(
    ("hex_payload", "reason"),
    [
        ("", "empty"),
        ("03", "truncated"),
        ("0367", "truncated"),
        ("036701", "truncated"),
        ("03FF0000", "unknown_lpp_type"),
        ("016700FF02", "truncated"),
    ],
)
def test_bad_frames_say_why(hex_payload: str, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(bytes.fromhex(hex_payload), CTX)
    assert caught.value.reason == reason


def encode_one(channel: int, code: int, raws: list[int]) -> bytes:
    kind = TYPES[code]
    return bytes([channel, code]) + b"".join(
        r.to_bytes(kind.size, "big", signed=kind.signed) for r in raws
    )


def raw_values(code: int) -> st.SearchStrategy[list[int]]:
    kind = TYPES[code]
    bits = kind.size * 8
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if kind.signed else (0, 2**bits - 1)
    if code == 133:
        hi = 2**31
    return st.lists(
        st.integers(lo, hi), min_size=len(kind.quantities), max_size=len(kind.quantities)
    )


record = st.tuples(st.integers(0, 255), st.sampled_from(sorted(TYPES))).flatmap(
    lambda cc: raw_values(cc[1]).map(lambda raws: (cc[0], cc[1], raws))
)


@given(st.lists(record, min_size=1, max_size=8))
def test_every_encoded_frame_decodes_back(records: list[tuple[int, int, list[int]]]) -> None:
    """Round trip: an LPP encoder's bytes decode to the same channels and scaled values."""
    payload = b"".join(encode_one(*r) for r in records)
    frame = parse(payload)
    want = []
    for channel, code, raws in records:
        if code == 133:
            continue
        kind = TYPES[code]
        divisors = (10_000, 10_000, 100) if code == 136 else (kind.divisor,) * len(raws)
        want += [
            (channel, q, r / d) for q, r, d in zip(kind.quantities, raws, divisors, strict=True)
        ]
    assert [(v.channel, v.quantity, v.value) for v in frame.values] == [
        (c, q, pytest.approx(v)) for c, q, v in want
    ]


@given(st.binary(max_size=64))
def test_any_bytes_give_readings_or_a_decode_error(payload: bytes) -> None:
    try:
        readings = decode(payload, CTX)
    except DecodeError:
        return
    assert all(r.sensor_id == "node-7" and r.probe is not None for r in readings)
