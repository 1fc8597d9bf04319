"""The Things Stack v3 and ChirpStack v4 uplinks: documented examples, LPP, radio metadata."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.decoders import DecodeContext, DecodeError, cayenne_lpp, chirpstack_v4, tts_v3

from ._vectors import RECEIVED, expected, load, raw

TTS = DecodeContext("town", "topic-dev", "v3/app1@tenant1/devices/topic-dev/up", RECEIVED)
CS = DecodeContext("town", "aabb", "application/app/device/aabb/event/up", RECEIVED)


def by_quantity(readings: list) -> dict[tuple[str, str], float]:
    """Value by (sensor, quantity), for readings without a probe."""
    assert all(r.probe is None for r in readings)
    return {(r.sensor_id, r.quantity): r.value for r in readings}


def by_probe(readings: list) -> dict[tuple[str, str | None, str], float]:
    """Value by (sensor, probe, quantity)."""
    return {(r.sensor_id, r.probe, r.quantity): r.value for r in readings}


def test_tts_data_formats_reference(shared_dir: Path) -> None:
    file = "tts-v3/uplink-data-formats-reference.json"
    want = expected(shared_dir, file)
    got = tts_v3.decode(raw(shared_dir, file), TTS)
    dev = want["device_id"]
    values = by_quantity(got)
    names = {"temperature": "temperature", "luminosity": "illuminance"}
    for w in want["readings"]:
        assert values[(dev, names[w["quantity"]])] == w["value"]
    gateway = want["gateway"]
    assert values[(dev, "rssi")] == gateway["rssi"]
    assert values[(dev, "snr")] == gateway["snr"]
    assert values[(dev, "gateway_count")] == 1
    assert values[(dev, "frame_counter")] == want["f_cnt"]
    assert {r.observed_at for r in got} == {datetime.fromisoformat(want["uplink_received_at"])}
    user = want["location_user"]
    assert {(r.location.lat, r.location.lon, r.location.alt) for r in got if r.location} == {
        (user["latitude"], user["longitude"], user["altitude"])
    }
    assert all(r.source_format == "tts_v3" and r.tenant == "town" for r in got)


def test_tts_starter_kit_device(shared_dir: Path) -> None:
    file = "tts-v3/uplink-webhook-starter-kit-mclimate-button.json"
    want = expected(shared_dir, file)
    got = tts_v3.decode(raw(shared_dir, file), TTS)
    values = by_quantity(got)
    dev = want["device_id"]
    names = {
        "batteryVoltage": "battery_voltage",
        "sensorTemperature": "temperature",
        "pressEvent": "press_event",
        "singlePressEventCounter": "single_press_event_counter",
        "thermistorProperlyConnected": "thermistor_properly_connected",
        "last_battery_percentage": "battery_level",
    }
    for w in want["readings"]:
        assert values[(dev, names[w["quantity"]])] == float(w["value"])
    assert values[(dev, "rssi")] == want["gateway"]["rssi"]
    assert values[(dev, "snr")] == want["gateway"]["snr"]
    flags = {r.quantity: r.quality_flags for r in got}
    assert flags["press_event"] == ("unknown_quantity",)
    assert flags["temperature"] == ()
    assert {r.unit for r in got if r.quantity == "battery_voltage"} == {"V"}


def test_tts_undecoded_text_is_a_dead_letter_reason(shared_dir: Path) -> None:
    file = "tts-v3/uplink-mqtt-integration-example.json"
    assert expected(shared_dir, file)["readings"] == []
    with pytest.raises(DecodeError) as caught:
        tts_v3.decode(raw(shared_dir, file), TTS)
    assert caught.value.reason == "undecodable_payload"


def test_tts_normalized_payload_fragment(shared_dir: Path) -> None:
    file = "tts-v3/uplink-message-fragment-the-things-node-normalized.json"
    want = {w["quantity"]: w["value"] for w in expected(shared_dir, file)["readings"]}
    got = tts_v3.decode(raw(shared_dir, file), TTS)
    values = by_quantity(got)
    # no end_device_ids in the fragment: the topic's device id
    assert values[("topic-dev", "temperature")] == want["normalized air.temperature"]
    assert values[("topic-dev", "battery")] == want["battery"]
    assert values[("topic-dev", "light")] == want["light"]
    assert [r.quantity for r in got].count("temperature") == 1  # not repeated from decoded
    assert {r.observed_at for r in got} == {RECEIVED}


def test_tts_cayenne_lpp_in_frm_payload(shared_dir: Path) -> None:
    vector = load(shared_dir, "cayenne-lpp/two-temperature-sensors.json")
    documented = vector["decoded_by_the_things_stack"]["uplink_message_as_documented"]
    uplink = {k: v for k, v in documented["uplink_message"].items() if k != "decoded_payload"}
    from_lpp = tts_v3.decode(json.dumps({"uplink_message": uplink}).encode(), TTS)
    from_decoded = tts_v3.decode(json.dumps(documented).encode(), TTS)
    decoded = documented["uplink_message"]["decoded_payload"]
    want = {("topic-dev", k.rsplit("_", 1)[1], "temperature"): v for k, v in decoded.items()}
    counter = {("topic-dev", None, "frame_counter"): 113}
    assert by_probe(from_decoded) == {**want, **counter}
    assert by_probe(from_lpp) == pytest.approx({**want, **counter})


def test_one_lpp_device_is_one_sensor_whichever_decoder_read_it(shared_dir: Path) -> None:
    """Our LPP decoder, TTS's LPP formatter and ChirpStack's LPP codec: same sensor, probes."""
    vector = load(shared_dir, "cayenne-lpp/two-temperature-sensors.json")
    ours = cayenne_lpp.decode(
        bytes.fromhex(vector["hex"]),
        DecodeContext("town", "topic-dev", "urbanpulse/town/topic-dev/lpp", RECEIVED),
    )
    tts = tts_v3.decode(
        json.dumps(vector["decoded_by_the_things_stack"]["uplink_message_as_documented"]).encode(),
        TTS,
    )
    event = {"object": vector["decoded_by_chirpstack_codec_test"]["object_subset"]}
    chirpstack = chirpstack_v4.decode(
        json.dumps(event).encode(),
        DecodeContext("town", "topic-dev", "application/a/device/topic-dev/event/up", RECEIVED),
    )
    want = {("topic-dev", str(w["channel"]), "temperature"): w["value"] for w in vector["expected"]}
    assert len(want) == 2  # two probes of one quantity: they must stay apart
    for readings in (ours, tts, chirpstack):
        got = {k: v for k, v in by_probe(readings).items() if k[2] == "temperature"}
        assert got == pytest.approx(want)


def test_tts_lpp_accelerometer_as_tts_decodes_it() -> None:
    body = {
        "uplink_message": {
            "decoded_payload": {"accelerometer_6": {"x": 1.234, "y": -1.234, "z": 0}}
        }
    }
    got = tts_v3.decode(json.dumps(body).encode(), TTS)
    assert by_probe(got) == {
        ("topic-dev", "6", "acceleration_x"): 1.234,
        ("topic-dev", "6", "acceleration_y"): -1.234,
        ("topic-dev", "6", "acceleration_z"): 0.0,
    }


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[]", "invalid_payload"),
        (b"{}", "invalid_payload"),
        (b'{"uplink_message": {"frm_payload": "%%%"}}', "invalid_payload"),
        (b"\xff", "invalid_json"),
    ],
)
def test_tts_bad_messages_say_why(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        tts_v3.decode(payload, TTS)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "file",
    [
        "chirpstack-v4/event-up-docs-example.json",
        "chirpstack-v4/event-up-decentlab-dl5tm-thingsboard-fixture.json",
    ],
)
def test_chirpstack_examples_without_object_are_dead_letters(shared_dir: Path, file: str) -> None:
    assert "object" not in load(shared_dir, file)
    with pytest.raises(DecodeError) as caught:
        chirpstack_v4.decode(raw(shared_dir, file), CS)
    assert caught.value.reason == "no_decoded_payload"


def test_chirpstack_docs_event_with_the_lpp_codec_object(shared_dir: Path) -> None:
    """The docs' event, with the object ChirpStack's own LPP codec test gives for these bytes."""
    file = "chirpstack-v4/event-up-docs-example.json"
    event = load(shared_dir, file)
    want = expected(shared_dir, file)
    lpp = load(shared_dir, "cayenne-lpp/two-temperature-sensors.json")
    gps = load(shared_dir, "cayenne-lpp/gps.json")
    event["object"] = {
        **lpp["decoded_by_chirpstack_codec_test"]["object_subset"],
        **gps["decoded_by_chirpstack_codec_test"]["object_subset"],
    }
    event["deviceInfo"]["devEui"] = want["dev_eui"].upper()
    got = chirpstack_v4.decode(json.dumps(event).encode(), CS)
    dev = want["dev_eui"].lower()
    temps = lpp["decoded_by_chirpstack_codec_test"]["object_subset"]["temperatureSensor"]
    position = gps["decoded_by_chirpstack_codec_test"]["object_subset"]["gpsLocation"]["1"]
    assert by_probe(got) == {
        **{(dev, ch, "temperature"): v for ch, v in temps.items()},
        **{(dev, "1", q): v for q, v in position.items()},
        (dev, None, "rssi"): event["rxInfo"][0]["rssi"],
        (dev, None, "snr"): event["rxInfo"][0]["snr"],
        (dev, None, "gateway_count"): 1,
    }
    assert {r.observed_at for r in got} == {datetime.fromisoformat(want["time"])}
    assert {(r.location.lat, r.location.lon) for r in got if r.location} == {
        (position["latitude"], position["longitude"])
    }


def test_chirpstack_thingsboard_fixture_with_decoded_object(shared_dir: Path) -> None:
    file = "chirpstack-v4/event-up-decentlab-dl5tm-thingsboard-fixture.json"
    event = load(shared_dir, file)
    want = expected(shared_dir, file)
    event["object"] = {w["quantity"]: w["value"] for w in want["thingsboard_result"]["readings"]}
    got = chirpstack_v4.decode(json.dumps(event).encode(), CS)
    values = by_quantity(got)
    dev = want["dev_eui"]
    for w in want["thingsboard_result"]["readings"]:
        assert values[(dev, w["quantity"])] == w["value"]
    assert values[(dev, "frame_counter")] == want["f_cnt"]
    assert values[(dev, "rssi")] == want["gateway"]["rssi"]
    assert all(r.location is None for r in got)  # rxInfo location is the gateway's


def test_chirpstack_event_without_data_gives_radio_metadata() -> None:
    event = {"devAddr": "x", "rxInfo": [{"rssi": -120, "snr": -7}, {"rssi": -90, "snr": -9.5}]}
    got = chirpstack_v4.decode(json.dumps(event).encode(), CS)
    assert by_quantity(got) == {
        ("aabb", "rssi"): -90,
        ("aabb", "snr"): -7,
        ("aabb", "gateway_count"): 2,
    }


@given(st.binary(max_size=200))
def test_any_bytes_give_readings_or_a_decode_error(payload: bytes) -> None:
    for decoder, ctx in ((tts_v3.decode, TTS), (chirpstack_v4.decode, CS)):
        with contextlib.suppress(DecodeError):
            decoder(payload, ctx)


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10))


def json_containers(inner: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)


json_value = st.recursive(json_leaf, json_containers, max_leaves=10)
b64 = st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode())


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "decoded_payload": json_value,
            "normalized_payload": json_value,
            "frm_payload": st.one_of(b64, json_leaf),
            "rx_metadata": json_value,
            "f_cnt": json_leaf,
            "received_at": json_leaf,
            "locations": json_value,
        },
    ),
    json_value,
)
def test_any_tts_uplink_gives_readings_or_a_decode_error(uplink: dict, ids: object) -> None:
    body = json.dumps({"uplink_message": uplink, "end_device_ids": ids}).encode()
    with contextlib.suppress(DecodeError):
        tts_v3.decode(body, TTS)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "object": json_value,
            "data": json_leaf,
            "rxInfo": json_value,
            "fCnt": json_leaf,
            "time": json_leaf,
            "deviceInfo": json_value,
        },
    )
)
def test_any_chirpstack_event_gives_readings_or_a_decode_error(event: dict) -> None:
    with contextlib.suppress(DecodeError):
        chirpstack_v4.decode(json.dumps(event).encode(), CS)
