"""urbanpulse.flux.literal: any value becomes one Flux literal of itself."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.api.test_flux import unescape_flux_string
from urbanpulse.flux import literal


@given(st.text())
def test_any_string_is_one_literal_of_itself(value: str) -> None:
    assert unescape_flux_string(literal(value)) == value


def test_other_values() -> None:
    assert literal(datetime(2026, 11, 25, tzinfo=UTC)) == "2026-11-25T00:00:00.000000Z"
    assert (literal(3), literal(2.0), literal(True), literal(("a",))) == (
        "3",
        "2.0",
        "true",
        '["a"]',
    )
    with pytest.raises(ValueError):
        literal(datetime(2026, 11, 25))
    with pytest.raises(ValueError):
        literal(float("inf"))
