"""The alias table and unit spellings onto the canonical quantities."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.aliases import (
    ALIASES,
    DEFAULT_TABLE,
    IGNORE,
    QuantityTable,
    normalise_name,
    snake_case,
)
from urbanpulse.model import QUANTITY_PATTERN
from urbanpulse.quantities import QUANTITIES, privacy_of


def test_every_alias_target_is_a_canonical_quantity() -> None:
    for vendor, target in ALIASES.items():
        assert vendor == normalise_name(vendor)
        assert target == IGNORE or target in QUANTITIES, vendor


@pytest.mark.parametrize(
    ("vendor", "canonical"),
    [
        ("temp", "temperature"),
        ("temperature", "temperature"),
        ("air.temperature", "temperature"),
        ("pm25", "pm2_5"),
        ("SDS_P2", "pm2_5"),
        ("SDS_P1", "pm10"),
        ("humidity", "relative_humidity"),
        ("BME280_temperature", "temperature"),
        ("batteryVoltage", "battery_voltage"),
        ("samples", IGNORE),
        ("whatever", None),
    ],
)
def test_aliases(vendor: str, canonical: str | None) -> None:
    assert DEFAULT_TABLE.canonical(vendor) == canonical


@pytest.mark.parametrize(
    ("name", "value", "unit", "want"),
    [
        ("temp", 212.0, "°F", ("temperature", 100.0, "Cel")),
        ("temperature", 300.0, "K", ("temperature", 26.85, "Cel")),
        ("pressure", 101325.0, "Pa", ("pressure", 1013.25, "hPa")),
        ("battery_voltage", 3300.0, "mV", ("battery_voltage", 3.3, "V")),
        ("pm25", 7.0, "µg/m³", ("pm2_5", 7.0, "ug/m3")),
        ("humidity", 54.0, "%RH", ("relative_humidity", 54.0, "%")),
        ("noise", 61.0, "dBA", ("noise_level", 61.0, "dB")),
        ("temperature", 5.0, None, ("temperature", 5.0, "Cel")),
    ],
)
def test_units_are_converted_to_ucum(
    name: str, value: float, unit: str | None, want: tuple[str, float, str]
) -> None:
    got = DEFAULT_TABLE.resolve(name, value, unit)
    assert got is not None
    assert (got.quantity, got.value, got.unit) == (want[0], pytest.approx(want[1]), want[2])
    assert got.flags == ()


def test_unconvertible_units_are_kept_and_flagged() -> None:
    got = DEFAULT_TABLE.resolve("temperature", 5.0, "furlong")
    assert got is not None and (got.unit, got.flags) == ("furlong", ("unconverted_unit",))


def test_unknown_fields_are_kept_restricted_and_flagged() -> None:
    got = DEFAULT_TABLE.resolve("Door Opened!", 1.0)
    assert got is not None
    assert (got.quantity, got.unit, got.flags) == ("door_opened", "1", ("unknown_quantity",))
    assert privacy_of(got.quantity) == "restricted"


def test_a_vendor_mac_field_is_personal() -> None:
    assert privacy_of(DEFAULT_TABLE.canonical("mac") or "") == "personal"


def test_overrides() -> None:
    table = QuantityTable.with_overrides({"Feinstaub": "pm10", "temp": IGNORE})
    assert table.canonical("feinstaub") == "pm10"
    assert table.resolve("temp", 1.0) is None
    assert DEFAULT_TABLE.canonical("temp") == "temperature"  # the built-in table is untouched


@given(st.text(max_size=80))
def test_made_up_names_always_match_the_quantity_pattern(name: str) -> None:
    made = snake_case(name)
    assert made is None or re.match(QUANTITY_PATTERN, made)
