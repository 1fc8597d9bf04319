"""The SensorThings $filter parser, its time bounds, and the other query options (pure)."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.flux import literal
from api.params import BadQuery
from api.sta.flux import ObservationQuery, observations_page_query, predicate, sort_spec
from api.sta.query import (
    Bounds,
    Comparison,
    Logical,
    OrderKey,
    parse_expand,
    parse_filter,
    parse_options,
    parse_orderby,
    time_bounds,
)

T1 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def test_comparisons_of_time_and_result() -> None:
    assert parse_filter("phenomenonTime ge 2026-11-20T08:00:00Z") == Comparison(
        "phenomenonTime", "ge", T1
    )
    assert parse_filter("result lt -2.5e1") == Comparison("result", "lt", -25.0)
    assert parse_filter("result eq 3") == Comparison("result", "eq", 3.0)
    offset = parse_filter("phenomenonTime gt 2026-11-20T09:00:00.5+01:00")
    assert offset == Comparison("phenomenonTime", "gt", T1 + timedelta(milliseconds=500))


def test_and_binds_tighter_than_or() -> None:
    a = Comparison("result", "gt", 1.0)
    b = Comparison("result", "lt", 2.0)
    c = Comparison("result", "eq", 5.0)
    assert parse_filter("result gt 1 or result lt 2 and result eq 5") == Logical(
        "or", a, Logical("and", b, c)
    )
    assert parse_filter("(result gt 1 or result lt 2) and result eq 5") == Logical(
        "and", Logical("or", a, b), c
    )
    assert parse_filter("result gt 1 and result lt 2 and result eq 5") == Logical(
        "and", Logical("and", a, b), c
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("result", "ends too early"),
        ("result gt", "ends too early"),
        ("result gt 'x'", "number"),
        ("result gt 2026-11-20T08:00:00Z", "number"),
        ("phenomenonTime gt 5", "ISO 8601"),
        ("phenomenonTime gt 2026-11-20T08:00:00", "offset"),
        ("name eq 'x'", "not supported"),
        ("properties/tenant eq 'x'", "not supported"),
        ("result foo 1", "expected one of"),
        ("not result gt 1", "not supported"),
        ("(result gt 1", "ends too early"),
        ("result gt 1)", "unexpected"),
        ("result gt 1 result lt 2", "unexpected"),
        ("result gt 1e999", "finite"),
        ("substringof('a', name)", "cannot read"),
    ],
)
def test_bad_filters_say_why(text: str, says: str) -> None:
    with pytest.raises(BadQuery, match=says):
        parse_filter(text)


@pytest.mark.parametrize(
    "attack",
    [
        'result gt 1) |> drop(columns: ["tenant"]',
        'result gt 1 or r.tenant == "x"',
        "result gt 1; drop",
        'phenomenonTime gt 2026-11-20T08:00:00Z") |> yield(',
        "result gt 1 |> limit(n: 1)",
        "result gt ${x}",
        "result gt 1\n|> drop()",
    ],
)
def test_injection_attempts_are_refused(attack: str) -> None:
    with pytest.raises(BadQuery):
        parse_filter(attack)


def test_limits_on_size_and_depth() -> None:
    with pytest.raises(BadQuery, match="levels"):
        parse_filter("(" * 40 + "result gt 1" + ")" * 40)
    with pytest.raises(BadQuery, match="comparisons"):
        parse_filter(" or ".join(["result gt 1"] * 40))
    with pytest.raises(BadQuery, match="characters"):
        parse_filter("result gt 1 " + " " * 3000)


def test_time_bounds_narrow_the_range() -> None:
    both = parse_filter(
        "phenomenonTime ge 2026-11-20T08:00:00Z and phenomenonTime lt 2026-11-21T08:00:00Z"
    )
    assert time_bounds(both) == Bounds(T1, T2)
    tick = timedelta(microseconds=1)
    assert time_bounds(parse_filter("phenomenonTime eq 2026-11-20T08:00:00Z")) == Bounds(
        T1, T1 + tick
    )
    assert time_bounds(parse_filter("phenomenonTime le 2026-11-21T08:00:00Z")) == Bounds(
        None, T2 + tick
    )
    either = parse_filter(
        "phenomenonTime lt 2026-11-20T08:00:00Z or phenomenonTime ge 2026-11-21T08:00:00Z"
    )
    assert time_bounds(either) == Bounds()
    result_only = parse_filter("phenomenonTime ge 2026-11-20T08:00:00Z or result gt 1")
    assert time_bounds(result_only) == Bounds()
    assert time_bounds(parse_filter("phenomenonTime ne 2026-11-20T08:00:00Z")) == Bounds()
    assert time_bounds(None) == Bounds()


def test_filter_values_reach_flux_only_as_params() -> None:
    params: dict[str, object] = {}
    expr = parse_filter("(result gt 1 or result le 2.5) and phenomenonTime lt 2026-11-21T08:00:00Z")
    text = predicate(expr, params)  # type: ignore[arg-type]
    assert text == "((r.value > params.f0 or r.value <= params.f1) and r._time < params.f2)"
    assert params == {"f0": 1.0, "f1": 2.5, "f2": T2}
    query = ObservationQuery(T1, T2, 10, 5, sensor_id="s'\"$", filter=expr)
    flux = observations_page_query("urbanpulse/raw", query)
    assert "s'" not in flux.text and flux.params["sensor_id"] == "s'\"$"
    assert literal(flux.params["offset"]) == "5"


@given(st.text(max_size=80))
def test_any_text_parses_or_is_a_bad_query(text: str) -> None:
    try:
        expr = parse_filter(text)
    except BadQuery:
        return
    params: dict[str, object] = {}
    rendered = predicate(expr, params)  # type: ignore[arg-type]
    # Whatever parsed renders as fixed names, operators and params only.
    words = set(rendered.replace("(", " ").replace(")", " ").split())
    allowed = {"r.value", "r._time", "and", "or", "==", "!=", ">", ">=", "<", "<="}
    assert words <= allowed | {f"params.f{i}" for i in range(len(params))}


def test_orderby_and_sort_direction() -> None:
    keys = parse_orderby("phenomenonTime desc, result", ("phenomenonTime", "result"))
    assert keys == (OrderKey("phenomenonTime", True), OrderKey("result", False))
    with pytest.raises(BadQuery, match="same way"):
        sort_spec(keys)
    columns, desc = sort_spec((OrderKey("result", True),))
    assert columns == ("value", "_time", "tenant", "sensor_id", "quantity") and desc
    assert sort_spec(())[0][0] == "_time"
    assert parse_orderby("@iot.id desc", ("id", "name")) == (OrderKey("id", True),)
    for bad in ("tenant", "result up", "result asc desc", ""):
        with pytest.raises(BadQuery):
            parse_orderby(bad, ("phenomenonTime", "result"))


def test_options_are_checked() -> None:
    opts = parse_options({"$top": "5", "$skip": "10", "$count": "true"}, default_top=3, max_top=9)
    assert (opts.top, opts.skip, opts.count) == (5, 10, True)
    assert parse_options({}, default_top=3, max_top=9).top == 3
    for raw in (
        {"$top": "10"},
        {"$top": "-1"},
        {"$skip": "x"},
        {"$count": "yes"},
        {"$select": "id"},
    ):
        with pytest.raises(BadQuery):
            parse_options(raw, default_top=3, max_top=9)
    assert parse_options({"tenant": "x"}, default_top=3, max_top=9).top == 3


def test_expand_items_with_their_own_options() -> None:
    items = parse_expand(
        "Thing,Observations($top=3;$orderby=phenomenonTime desc;$filter=result gt 1)"
    )
    assert [i.name for i in items] == ["Thing", "Observations"]
    assert items[1].raw == {
        "$top": "3",
        "$orderby": "phenomenonTime desc",
        "$filter": "result gt 1",
    }
    for bad in ("Datastreams/Observations", "Observations($top=1", "Observations(x)"):
        with pytest.raises(BadQuery):
            parse_expand(bad)
    with pytest.raises(BadQuery, match="one level"):
        parse_options({"$expand": "Observations"}, default_top=3, max_top=9, nested=True)


@pytest.mark.parametrize(
    ("time", "says"),
    [
        ("2026-02-30T00:00:00Z", "not a valid time"),  # no such day
        ("2026-02-01T24:00:00Z", "not a valid time"),
        ("2026-02-01T00:00:00+25:00", "not a valid time"),  # offsets end at ±23:59
        ("2026-02-01T00:00:00-25:00", "not a valid time"),
        ("9999-12-31T23:59:59.999999Z", "1678 to 2261"),  # a bound past it overflowed
        ("0001-01-01T00:00:00+01:00", "1678 to 2261"),  # no UTC form in Python
        ("9999-12-31T23:00:00-01:00", "1678 to 2261"),
        ("2262-04-12T00:00:00Z", "1678 to 2261"),  # past InfluxDB's nanoseconds
    ],
)
def test_impossible_times_are_a_bad_query(time: str, says: str) -> None:
    for op in ("eq", "ge", "le"):
        with pytest.raises(BadQuery, match=says):
            time_bounds(parse_filter(f"phenomenonTime {op} {time}"))


TIMES = st.from_regex(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})", fullmatch=True
)


@given(TIMES, st.sampled_from(("eq", "ne", "gt", "ge", "lt", "le")))
def test_any_time_parses_bounds_and_renders_or_is_a_bad_query(time: str, op: str) -> None:
    try:
        expr = parse_filter(f"phenomenonTime {op} {time} and phenomenonTime le {time}")
    except BadQuery:
        return
    bounds = time_bounds(expr)
    params: dict[str, object] = {}
    predicate(expr, params)  # type: ignore[arg-type]
    for value in [*params.values(), bounds.start, bounds.stop]:
        if value is not None:
            literal(value)  # type: ignore[arg-type]  # every time has a Flux literal
