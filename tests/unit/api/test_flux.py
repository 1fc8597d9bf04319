"""User values reach Flux only as literals that cannot break out of themselves."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.filters import ObservationFilter
from api.flux import literal, observations_query, params_record


def unescape_flux_string(text: str) -> str:
    """Read one Flux string literal the way Flux's scanner does; fail on anything else."""
    assert text[0] == '"' and text[-1] == '"'
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            nxt = body[i + 1]
            if nxt == "x":  # a byte escape; we only ever write \x24 ($)
                assert body[i + 2 : i + 4] == "24", "unexpected byte escape"
                out.append("$")
                i += 4
                continue
            assert nxt in '\\"', f"unknown escape \\{nxt}"
            out.append(nxt)
            i += 2
            continue
        assert char != '"', "an unescaped quote would end the string"
        assert char != "$", "a raw $ may interpolate or, as \\$, break Flux 0.65's scanner"
        out.append(char)
        i += 1
    return "".join(out)


@given(st.text())
def test_any_string_is_one_literal_of_itself(value: str) -> None:
    assert unescape_flux_string(literal(value)) == value


@pytest.mark.parametrize(
    "attack",
    ['x") |> drop(columns: ["_value"]) //', 'a\\" or true', '${secrets.get(key: "k")}', "\\"],
)
def test_injection_attempts_stay_inside_the_string(attack: str) -> None:
    assert unescape_flux_string(literal(attack)) == attack


def test_times_are_utc_rfc3339() -> None:
    cet = timezone(timedelta(hours=1))
    assert literal(datetime(2026, 11, 27, 11, 0, tzinfo=cet)) == "2026-11-27T10:00:00.000000Z"
    with pytest.raises(ValueError):
        literal(datetime(2026, 11, 27))
    assert literal(datetime(1700, 1, 2, tzinfo=UTC)) == "1700-01-02T00:00:00.000000Z"
    assert literal(datetime(999, 1, 2, tzinfo=UTC)).startswith("0999-")  # four digits


def test_inline_puts_each_literal_where_it_is_used() -> None:
    """InfluxDB 1.8 pushes tag filters down to storage only when they compare with literals."""
    evil = 'x" or r._value > 0 or "'
    start = datetime(2026, 11, 27, tzinfo=UTC)
    flt = ObservationFilter(start=start, stop=start + timedelta(days=1), limit=10, sensor_id=evil)
    text = observations_query("urbanpulse/raw", flt).inline()
    assert "params" not in text
    assert f'r["sensor_id"] == {literal(evil)}' in text
    assert "r._time < 2026-11-28T00:00:00.000000Z" in text  # ``to`` is exclusive


def test_numbers_and_booleans() -> None:
    assert literal(5) == "5"
    assert literal(2.0) == "2.0"
    assert literal(1e-7) == "1e-07"
    assert literal(True) == "true"
    with pytest.raises(ValueError):
        literal(float("nan"))


def test_queries_never_contain_user_values() -> None:
    evil = 'x" or r._value > 0 or "'
    start = datetime(2026, 11, 27, tzinfo=UTC)
    flt = ObservationFilter(
        start=start,
        stop=start + timedelta(days=1),
        limit=10,
        sensor_id=evil,
        tenant=evil,
        quantity="pm2_5",
    )
    query = observations_query("urbanpulse/raw", flt)
    assert evil not in query.text
    assert query.params["sensor_id"] == evil
    assert params_record(query.params).startswith("params = {")
