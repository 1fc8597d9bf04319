import contextlib
import csv
import io
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.formats import OBSERVATION_FIELDS, Observation, csv_lines, decode_cursor, encode_cursor

OBS = Observation(
    time=datetime(2026, 11, 27, 10, 0, 0, 250000, tzinfo=UTC),
    tenant="town",
    sensor_id="air,1",
    quantity="pm2_5",
    value=7.25,
    unit="ug/m3",
    lat=52.1,
    lon=5.1,
    quality_flags=["spike", "stuck"],
)


def test_csv_has_a_header_and_parses_back() -> None:
    text = "".join(csv_lines([OBS, OBS.model_copy(update={"lat": None, "lon": None})]))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == OBSERVATION_FIELDS
    assert rows[0]["time"] == "2026-11-27T10:00:00.250000Z"
    assert rows[0]["sensor_id"] == "air,1"
    assert float(rows[0]["value"]) == 7.25
    assert rows[0]["quality_flags"] == "spike;stuck"
    assert rows[1]["lat"] == ""


def test_cursor_round_trip() -> None:
    assert decode_cursor(encode_cursor(OBS)) == (OBS.time, "town", "air,1", "pm2_5")


@given(st.text(max_size=60))
def test_any_text_is_a_cursor_or_a_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        decode_cursor(text)


@pytest.mark.parametrize("text", ["", "abc", "MjAyNg"])
def test_foreign_cursors_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        decode_cursor(text)
