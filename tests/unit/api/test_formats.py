import base64
import contextlib
import csv
import io
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.flux import literal
from api.formats import (
    FORMULA_STARTS,
    OBSERVATION_FIELDS,
    Observation,
    csv_lines,
    decode_cursor,
    decode_keyset,
    encode_cursor,
    spreadsheet_safe,
)
from api.params import BadQuery
from api.queries import PageAsked, SpanAsked, observations_asked
from tests.unit.api.fakes import NOW
from urbanpulse.settings import ApiSettings

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


def _forged(*fields: str) -> str:
    return base64.urlsafe_b64encode("\x1f".join(fields).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00+01:00",  # Python has no UTC form of it: OverflowError in Flux
        "0001-01-01T00:00:00+00:00",
        "9999-12-31T23:59:59-01:00",
        "2262-04-12T00:00:00+00:00",  # past InfluxDB's 64-bit nanoseconds
    ],
)
def test_cursors_with_times_no_row_can_have_are_refused(moment: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        decode_cursor(_forged(moment, "demo", "air-1", "pm2_5"))
    with pytest.raises(ValueError, match="cursor"):
        decode_keyset("agg", _forged("agg", moment, "demo", "air-1", "pm2_5"), 3)
    asked = PageAsked(limit=None, cursor=_forged(moment, "demo", "air-1", "pm2_5"))
    with pytest.raises(BadQuery, match="cursor"):
        observations_asked(
            span=SpanAsked(), quantity=None, tenant=None, page=asked, api=ApiSettings(), now=NOW
        )


@given(st.datetimes(timezones=st.timezones()))
def test_every_cursor_accepted_has_a_flux_literal(moment: datetime) -> None:
    try:
        when, *_ = decode_cursor(_forged(moment.isoformat(), "demo", "air-1", "pm2_5"))
    except ValueError:
        return
    assert literal(when).endswith("Z")


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_text_cells_that_a_spreadsheet_would_run_start_with_a_quote(start: str) -> None:
    attack = f"{start}SUM(1;2)"
    row = OBS.model_copy(update={"tenant": attack, "sensor_id": attack, "value": -3.5})
    [parsed] = list(csv.DictReader(io.StringIO("".join(csv_lines([row])), newline="")))
    assert parsed["tenant"] == parsed["sensor_id"] == f"'{attack}"
    assert parsed["value"] == "-3.5"  # a number stays a number
    assert parsed["time"] == "2026-11-27T10:00:00.250000Z"


@given(st.text())
def test_no_text_cell_starts_a_formula(text: str) -> None:
    safe = spreadsheet_safe(text)
    assert not safe.startswith(FORMULA_STARTS)
    assert safe in (text, f"'{text}")
