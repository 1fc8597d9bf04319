"""The platform's one quantity table: names, units, privacy classes and ranges."""

from __future__ import annotations

import re

import pytest

from urbanpulse.model import QUANTITY_PATTERN, UNIT_PATTERN
from urbanpulse.quantities import OPEN_QUANTITIES, QUANTITIES, privacy_of, require


def test_every_quantity_is_valid() -> None:
    for name, quantity in QUANTITIES.items():
        assert re.match(QUANTITY_PATTERN, name) and name == quantity.name
        assert re.match(UNIT_PATTERN, quantity.unit)
        assert quantity.privacy in ("open", "restricted", "personal")
        if quantity.range is not None:
            assert quantity.range.low < quantity.range.high, name
            assert 0 < quantity.range.max_step <= quantity.range.high - quantity.range.low, name


def test_privacy_classes() -> None:
    assert privacy_of("pm2_5") == "open"
    assert privacy_of("rssi") == "restricted"
    assert privacy_of("people_count") == "personal"
    assert privacy_of("people_count_sum") == "personal"
    assert privacy_of("door_opened") == "restricted"  # not in the table: restricted


def test_open_quantities_are_exactly_the_open_class() -> None:
    assert set(OPEN_QUANTITIES) == {n for n, q in QUANTITIES.items() if q.privacy == "open"}
    assert "battery_level" not in OPEN_QUANTITIES and "temperature" in OPEN_QUANTITIES


def test_require_refuses_a_name_that_is_not_a_quantity() -> None:
    assert require("precipitation") == "precipitation"
    with pytest.raises(ValueError, match="rainfall"):
        require("rainfall")
