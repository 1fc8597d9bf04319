"""The colour scales: bands in order, values fall in the right band, domains of sensors."""

from __future__ import annotations

import re

import pytest

from api.privacy import OPEN_QUANTITIES
from urbanpulse.display import DISPLAY, DOMAINS, display, quantity_order, scales_json, sensor_domain
from urbanpulse.quantities import QUANTITIES

COLOUR = re.compile(r"^#[0-9a-f]{6}$")


def test_every_quantity_shown_is_a_canonical_open_quantity() -> None:
    assert sorted(set(DISPLAY) - set(QUANTITIES)) == []
    assert sorted(q for q in DISPLAY if q not in OPEN_QUANTITIES) == []


@pytest.mark.parametrize("quantity", sorted(q for q, d in DISPLAY.items() if d.scale))
def test_bands_rise_and_only_the_last_is_open_ended(quantity: str) -> None:
    scale = DISPLAY[quantity].scale
    assert scale is not None
    uppers = [b.upper for b in scale.bands]
    assert uppers[-1] is None and None not in uppers[:-1]
    bounded = [u for u in uppers if u is not None]
    assert bounded == sorted(bounded) and len(set(bounded)) == len(bounded)
    assert all(COLOUR.match(b.colour) for b in scale.bands)


@pytest.mark.parametrize(
    ("quantity", "value", "label"),
    [
        ("pm2_5", 0, "band.eaqi.good"),
        ("pm2_5", 9.99, "band.eaqi.good"),
        ("pm2_5", 10, "band.eaqi.fair"),  # a band's upper bound is exclusive
        ("pm2_5", 80, "band.eaqi.extremely_poor"),
        ("pm10", 45, "band.eaqi.moderate"),
        ("no2", 150, "band.eaqi.poor"),
        ("o3", 300, "band.eaqi.very_poor"),
        ("noise_level", 44.9, "band.noise.quiet"),
        ("noise_level", 80, "band.noise.harmful"),
        ("temperature", -3, "band.temperature.freezing"),
        ("temperature", 22, "band.temperature.warm"),
        ("occupancy", 1, "band.parking.taken"),
        ("occupancy", 0, "band.parking.free"),
    ],
)
def test_a_value_falls_in_its_band(quantity: str, value: float, label: str) -> None:
    scale = DISPLAY[quantity].scale
    assert scale is not None
    assert scale.band(value).label == label


def test_a_sensor_is_of_the_domain_of_its_first_quantity_in_domain_order() -> None:
    assert sensor_domain(["temperature", "pm2_5", "relative_humidity"]) == "air"
    assert sensor_domain(["temperature", "pressure"]) == "weather"
    assert sensor_domain(["noise_level"]) == "noise"
    assert sensor_domain(["something_new"]) == "other"
    assert sensor_domain([]) == "other"
    assert display("something_new").scale is None


def test_quantities_are_offered_scaled_first_by_domain() -> None:
    assert quantity_order({"pressure", "temperature", "pm10", "pm2_5", "zzz"}) == [
        "pm2_5",
        "pm10",
        "temperature",
        "pressure",
        "zzz",
    ]


def test_the_json_the_pages_read_has_every_quantity_and_domain() -> None:
    served = scales_json()
    assert set(served["quantities"]) == set(DISPLAY)
    assert served["domains"] == list(DOMAINS)
    pm = served["quantities"]["pm2_5"]
    assert pm["unit"] == "µg/m³" and pm["scale"]["bands"][0] == {
        "upper": 10,
        "colour": "#50f0e6",
        "label": "band.eaqi.good",
    }


def test_every_displayed_quantity_is_a_canonical_one() -> None:
    assert set(DISPLAY) <= set(QUANTITIES)
