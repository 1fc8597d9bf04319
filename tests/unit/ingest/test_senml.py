"""SenML (RFC 8428): the RFC's own examples and their resolved forms, base fields, edge cases."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.decoders import DecodeError
from ingest.decoders.senml import decode

from ._vectors import RECEIVED, ctx, expected, load, raw

CTX = ctx("senml")


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def run(pack: object) -> list:
    return decode(json.dumps(pack).encode(), CTX)


def test_single_data_point_is_now(shared_dir: Path) -> None:
    [want] = expected(shared_dir, "senml/rfc8428-5.1.1-single-data-point.json")["readings"]
    [r] = decode(raw(shared_dir, "senml/rfc8428-5.1.1-single-data-point.json"), CTX)
    assert (r.quantity, r.value, r.unit) == (want["quantity"], want["value"], want["unit"])
    assert r.observed_at == RECEIVED
    assert (r.tenant, r.sensor_id, r.source_format) == ("town", "s-1", "senml")


def test_base_name_and_units(shared_dir: Path) -> None:
    file = "senml/rfc8428-5.1.2-multiple-data-points.json"
    want = expected(shared_dir, file)["readings"]
    got = decode(raw(shared_dir, file), CTX)
    assert [(r.quantity, r.value, r.unit) for r in got] == [
        (w["name"].rsplit(":", 1)[1], w["value"], w["unit"]) for w in want
    ]


@pytest.mark.parametrize(
    ("pack", "resolved"),
    [
        (
            "senml/rfc8428-5.1.2-multiple-data-points-base-time-base-unit.json",
            "senml/spec-repo-ex3.gen.resolved.json",
        ),
        (
            "senml/rfc8428-5.1.3-multiple-measurements.json",
            "senml/rfc8428-5.1.4-resolved-data.json",
        ),
        ("senml/rfc8428-5.1.4-resolved-data.json", "senml/rfc8428-5.1.4-resolved-data.json"),
    ],
)
def test_packs_resolve_as_the_rfc_says(shared_dir: Path, pack: str, resolved: str) -> None:
    """Base time, base unit and relative times give the RFC's resolved records."""
    got = decode(raw(shared_dir, pack), CTX)
    want = load(shared_dir, resolved)
    units = {"%RH": "%", "%EL": "%", "lat": "deg", "lon": "deg", "V": "V", "A": "A"}
    assert [(r.value, r.unit) for r in got] == [
        (pytest.approx(w["v"]), units[w["u"]]) for w in want
    ]
    assert [r.observed_at.timestamp() for r in got] == [
        pytest.approx(w["t"], abs=1e-3) for w in want
    ]


def test_measurements_by_unit_and_position(shared_dir: Path) -> None:
    got = decode(raw(shared_dir, "senml/rfc8428-5.1.3-multiple-measurements.json"), CTX)
    assert (
        len(got)
        == expected(shared_dir, "senml/rfc8428-5.1.3-multiple-measurements.json")["readings_count"]
    )
    assert [r.quantity for r in got[:3]] == ["relative_humidity", "longitude", "latitude"]
    assert got[0].location is not None
    assert (got[0].location.lat, got[0].location.lon) == (60.07965, 24.30621)
    battery = [r for r in got if r.quantity == "battery_level"]
    assert [(r.value, r.location) for r in battery] == [(98, None)]


def test_multiple_data_types(shared_dir: Path) -> None:
    """v is kept, vb becomes 1/0, vs and vd are ignored (documented)."""
    file = "senml/rfc8428-5.1.5-multiple-data-types.json"
    want = expected(shared_dir, file)["readings"]
    got = decode(raw(shared_dir, file), CTX)
    temp, opened = got
    assert (temp.quantity, temp.value, temp.unit) == ("temperature", want[0]["value"], "Cel")
    assert (opened.quantity, opened.value) == ("open", float(want[2]["boolean_value"]))
    assert "unknown_quantity" in opened.quality_flags


def test_collection_of_resources_keeps_devices_apart(shared_dir: Path) -> None:
    file = "senml/rfc8428-5.1.6-collection-of-resources.json"
    want = expected(shared_dir, file)
    got = decode(raw(shared_dir, file), CTX)
    assert [(r.sensor_id, r.value) for r in got] == [
        (f"s-1:{w['name'].rsplit('/', 1)[0]}", w["value"]) for w in want["readings"]
    ]
    assert {r.observed_at for r in got} == {at(want["time"])}
    assert len({(r.sensor_id, r.quantity) for r in got}) == 4


def test_base_value_sum_and_unit_override() -> None:
    got = run(
        [
            {
                "bn": "dev:",
                "bt": 1.7e9,
                "bu": "Pa",
                "bv": 100000,
                "bs": 10,
                "n": "pressure",
                "v": 5,
            },
            {"n": "pressure", "u": "hPa", "v": -99000, "t": 60},
            {"n": "energy", "u": "Wh", "s": 2500},
        ]
    )
    assert [(r.quantity, r.value, r.unit) for r in got] == [
        ("pressure", pytest.approx(1000.05), "hPa"),
        ("pressure", 1000.0, "hPa"),
        ("energy_sum", pytest.approx(2.51), "kW.h"),  # Wh → kW.h
    ]
    assert got[1].observed_at == at(1.7e9 + 60)


def test_relative_times_count_from_receipt() -> None:
    [r] = run([{"n": "temperature", "u": "Cel", "v": 1, "t": -30}])
    assert r.observed_at == RECEIVED - timedelta(seconds=30)


def test_fahrenheit_is_converted() -> None:
    [r] = run([{"n": "temp", "u": "degF", "v": 212}])
    assert (r.quantity, r.value, r.unit) == ("temperature", pytest.approx(100), "Cel")


def test_strings_only_give_no_readings() -> None:
    assert run([{"n": "label", "vs": "x"}]) == []


@pytest.mark.parametrize(
    ("pack", "reason"),
    [
        (b"{", "invalid_json"),
        (b'{"n": "x", "v": 1}', "invalid_payload"),
        (b"[]", "invalid_payload"),
        (b'[{"n": "x", "v": "1"}]', "invalid_payload"),
        (b'[{"n": "x", "v": true}]', "invalid_payload"),
        (b'[{"n": " bad", "v": 1}]', "invalid_payload"),
        (b'[{"v": 1}]', "invalid_payload"),
        (b'[{"n": "x", "v": 1, "vs": "y"}]', "invalid_payload"),
        (b'[{"bver": 11, "n": "x", "v": 1}]', "unsupported_version"),
        (b'[{"n": "x", "v": 1, "crit_": 1}]', "unsupported_senml_field"),
        (b'[{"bn": "urn:dev:1", "v": 1}]', "unknown_quantity"),
    ],
)
def test_bad_packs_say_why(pack: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(pack, CTX)
    assert caught.value.reason == reason


@given(st.binary(max_size=300))
def test_any_bytes_give_readings_or_a_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(payload, CTX)


senml_values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
record = st.dictionaries(
    st.sampled_from(
        [
            "bn",
            "bt",
            "bu",
            "bv",
            "bs",
            "bver",
            "n",
            "u",
            "v",
            "vs",
            "vb",
            "vd",
            "s",
            "t",
            "ut",
            "x_",
        ]
    ),
    st.one_of(senml_values, st.sampled_from(["Cel", "%RH", "temp", "dev:", "lat", "Pa"])),
    max_size=6,
)


@given(st.lists(record, max_size=6))
def test_any_pack_gives_readings_or_a_decode_error(pack: list[dict[str, object]]) -> None:
    try:
        readings = decode(json.dumps(pack).encode(), CTX)
    except DecodeError:
        return
    for r in readings:
        assert r.tenant == "town" and r.sensor_id.startswith("s-1")
