"""api/queries.py: each parameter lands in its own field of the filter, checks in one order."""

from __future__ import annotations

from datetime import timedelta

import pytest

from api.filters import BBox, Scope
from api.formats import encode_keyset
from api.params import BadQuery
from api.privacy import OPEN_QUANTITIES, NotPublished
from api.queries import (
    PageAsked,
    SpanAsked,
    aggregate_keys,
    aggregates_asked,
    alerts_asked,
    observations_asked,
)
from tests.unit.api.fakes import NOW
from urbanpulse.settings import ApiSettings

API = ApiSettings(default_limit=50, max_limit=100, max_raw_range_days=31, max_range_days=366)
FROM, TO = NOW - timedelta(hours=5), NOW - timedelta(hours=1)
BOX = BBox(min_lon=5.0, min_lat=52.0, max_lon=5.2, max_lat=52.2)


def test_observation_parameters_reach_their_fields() -> None:
    asked = observations_asked(
        sensor_ids=["air-2", "air-1", "air-2"],
        span=SpanAsked(start=FROM, stop=TO),
        quantity="pm10",
        tenant="town",
        bbox=BOX,
        page=PageAsked(limit=7),
        api=API,
        now=NOW,
    )
    flt = asked.filter
    assert (flt.start, flt.stop) == (FROM, TO)
    assert (flt.tenant, flt.quantity, flt.sensor_id) == ("town", "pm10", None)
    assert flt.sensor_ids == ("air-1", "air-2")
    assert flt.bbox == BOX
    assert (asked.size, flt.limit) == (7, 8)  # one row more: is there a next page?
    assert flt.allowed == OPEN_QUANTITIES


def test_one_sensors_observations_default_to_the_last_day() -> None:
    asked = observations_asked(
        sensor_id="air-1",
        span=SpanAsked(),
        quantity=None,
        tenant=None,
        page=PageAsked(),
        api=API,
        now=NOW,
    )
    flt = asked.filter
    assert (flt.sensor_id, flt.sensor_ids) == ("air-1", ())
    assert (flt.start, flt.stop) == (NOW - timedelta(days=1), NOW)
    assert asked.size == 50


def test_an_unpublished_quantity_is_refused_before_the_range_is_checked() -> None:
    """The order of the checks decides the status of a query with several faults."""
    with pytest.raises(NotPublished):
        observations_asked(
            span=SpanAsked(start=TO, stop=FROM),  # also wrong: from after to
            quantity="battery_level",
            tenant=None,
            page=PageAsked(limit=1000),  # also wrong: above max_limit
            api=API,
            now=NOW,
        )


@pytest.mark.parametrize(
    ("span", "page", "message"),
    [
        (SpanAsked(start=TO, stop=FROM), PageAsked(), "before"),
        (SpanAsked(start=NOW - timedelta(days=32)), PageAsked(), "31 days"),
        (SpanAsked(), PageAsked(limit=101), "at most 100"),
        (SpanAsked(), PageAsked(cursor="not-a-cursor"), "cursor"),
    ],
)
def test_bad_ranges_pages_and_cursors(span: SpanAsked, page: PageAsked, message: str) -> None:
    with pytest.raises(BadQuery, match=message):
        observations_asked(span=span, quantity=None, tenant=None, page=page, api=API, now=NOW)


def test_aggregate_parameters_reach_their_fields() -> None:
    cursor = encode_keyset("agg", FROM, "town", "oost", "pm10")
    asked = aggregates_asked(
        scope="district",
        keys=("centrum", "oost"),
        window="15m",
        span=SpanAsked(start=FROM, stop=TO),
        quantity="pm10",
        tenant="town",
        bbox=None,
        page=PageAsked(limit=3, cursor=cursor),
        api=API,
        now=NOW,
    )
    flt = asked.filter
    assert (flt.scope, flt.window, flt.keys) == ("district", "15m", ("centrum", "oost"))
    assert (flt.tenant, flt.quantity) == ("town", "pm10")
    assert (flt.start, flt.stop, flt.limit) == (FROM, TO, 4)
    assert flt.after == (FROM, "town", "oost", "pm10")


def test_an_observation_cursor_is_no_aggregate_cursor() -> None:
    cursor = encode_keyset("alert", FROM, "town", "air-1", "rule", "pm10")
    with pytest.raises(BadQuery, match="cursor"):
        aggregates_asked(
            scope="sensor",
            keys=(),
            window="1h",
            span=SpanAsked(),
            quantity=None,
            tenant=None,
            bbox=None,
            page=PageAsked(cursor=cursor),
            api=API,
            now=NOW,
        )


@pytest.mark.parametrize(
    ("scope", "sensor_ids", "districts", "expected"),
    [
        ("sensor", ["b", "a", "b"], None, ("a", "b")),
        ("district", None, ["oost", "centrum"], ("centrum", "oost")),
        ("sensor", None, ["oost"], "'district' needs scope=district"),
        ("district", ["a"], None, "'sensor_id' needs scope=sensor"),
        ("sensor", ["a", "b", "c"], None, "at most 2"),
    ],
)
def test_aggregate_keys(
    scope: Scope, sensor_ids: list[str] | None, districts: list[str] | None, expected: object
) -> None:
    if isinstance(expected, tuple):
        found = aggregate_keys(scope=scope, sensor_ids=sensor_ids, districts=districts, maximum=2)
        assert found == expected
    else:
        with pytest.raises(BadQuery, match=str(expected)):
            aggregate_keys(scope=scope, sensor_ids=sensor_ids, districts=districts, maximum=2)


def test_a_box_needs_scope_sensor() -> None:
    with pytest.raises(BadQuery, match="scope=sensor"):
        aggregates_asked(
            scope="district",
            keys=(),
            window="1h",
            span=SpanAsked(),
            quantity=None,
            tenant=None,
            bbox=BOX,
            page=PageAsked(),
            api=API,
            now=NOW,
        )


def test_alert_parameters_reach_their_fields() -> None:
    cursor = encode_keyset("alert", FROM, "town", "air-1", "pm10_high", "pm10")
    asked = alerts_asked(
        state="closed",
        sensor_id="air-1",
        rule="pm10_high",
        quantity="pm10",
        tenant="town",
        span=SpanAsked(stop=TO),
        page=PageAsked(limit=2, cursor=cursor),
        api=API,
        now=NOW,
    )
    flt = asked.filter
    assert (flt.state, flt.sensor_id, flt.rule) == ("closed", "air-1", "pm10_high")
    assert (flt.quantity, flt.tenant) == ("pm10", "town")
    assert (flt.start, flt.stop) == (TO - timedelta(days=366), TO)  # the longest range
    assert flt.after == (FROM, "town", "air-1", "pm10_high", "pm10")
    assert flt.limit == 3
