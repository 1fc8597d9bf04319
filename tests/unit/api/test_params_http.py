"""Pure parts of the API: query checks, cursors, conditional requests, GeoJSON, privacy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from geojson_pydantic import FeatureCollection
from hypothesis import given
from hypothesis import strategies as st

from api.filters import BBox, ObservationFilter
from api.flux import keyset_predicate, observations_query
from api.formats import decode_keyset, encode_keyset
from api.geojson import collection, latest_features, sensor_feature
from api.http import etag_matches, etag_of
from api.params import BadQuery, negotiate, page_size, parse_bbox, time_range
from api.privacy import OPEN_QUANTITIES, is_open
from api.sensors import QuantityInfo, Sensor, SensorLocation, filter_sensors

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def test_time_range_defaults_and_limits() -> None:
    span = time_range(None, None, now=NOW, default_span=timedelta(days=1), max_days=31)
    assert (span.start, span.stop) == (NOW - timedelta(days=1), NOW)
    with pytest.raises(BadQuery, match="offset"):
        time_range(datetime(2026, 1, 1), None, now=NOW, default_span=timedelta(1), max_days=31)
    with pytest.raises(BadQuery, match="before"):
        time_range(NOW, NOW, now=NOW, default_span=timedelta(1), max_days=31)
    with pytest.raises(BadQuery, match="31 days"):
        time_range(NOW - timedelta(days=32), NOW, now=NOW, default_span=timedelta(1), max_days=31)
    # found by Schemathesis: year 788 reached InfluxDB, and year 1 overflowed "to - 1 day"
    for far in (datetime(788, 8, 3, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC)):
        with pytest.raises(BadQuery, match="1678 to 2261"):
            time_range(None, far, now=NOW, default_span=timedelta(1), max_days=31)
    with pytest.raises(BadQuery, match="1678 to 2261"):
        time_range(
            datetime(9999, 1, 1, tzinfo=UTC), None, now=NOW, default_span=timedelta(1), max_days=31
        )


@pytest.mark.parametrize(
    "text", ["1,2,3", "a,b,c,d", "10,0,5,1", "0,10,1,5", "-181,0,0,1", "nan,0,1,1", "inf,0,1,1"]
)
def test_bad_boxes_are_refused(text: str) -> None:
    with pytest.raises(BadQuery, match="bbox"):
        parse_bbox(text)


def test_box_contains_its_edges() -> None:
    box = parse_bbox("5,52,5.2,52.2")
    assert box == BBox(min_lon=5, min_lat=52, max_lon=5.2, max_lat=52.2)
    assert box.contains(lat=52, lon=5) and box.contains(lat=52.2, lon=5.2)
    assert not box.contains(lat=51.9, lon=5.1)


def test_page_size() -> None:
    assert page_size(None, default=100, maximum=1000) == 100
    with pytest.raises(BadQuery):
        page_size(1001, default=100, maximum=1000)


def test_negotiation_prefers_the_parameter_then_accept() -> None:
    offered = ("json", "csv", "geojson", "jsonl")
    assert negotiate("csv", "application/geo+json", offered) == "csv"
    assert negotiate(None, "text/html, application/geo+json;q=0.9", offered) == "geojson"
    assert negotiate(None, "*/*", offered) == "json"
    assert negotiate(None, "text/csv", ("json", "geojson")) == "json"


@given(st.sampled_from(["agg", "alert"]), st.lists(st.text(), min_size=1, max_size=4))
def test_keyset_cursors_round_trip(kind: str, parts: list[str]) -> None:
    moment = datetime(2026, 11, 27, 10, 0, 0, 123000, tzinfo=UTC)
    if any("\x1f" in p for p in parts):
        return
    assert decode_keyset(kind, encode_keyset(kind, moment, *parts), len(parts)) == (
        moment,
        tuple(parts),
    )


def test_cursor_of_another_endpoint_is_refused() -> None:
    cursor = encode_keyset("agg", NOW, "t", "s", "q")
    with pytest.raises(ValueError, match="cursor"):
        decode_keyset("alert", cursor, 3)
    with pytest.raises(ValueError, match="cursor"):
        decode_keyset("agg", cursor, 4)


def test_keyset_predicate_orders_like_the_sort() -> None:
    text = keyset_predicate(("_time", "a", "b"))
    assert text == (
        'r["_time"] > params.after_0 or (r["_time"] == params.after_0 and '
        '(r["a"] > params.after_1 or (r["a"] == params.after_1 and (r["b"] > params.after_2))))'
    )


def test_only_asked_filters_are_written_and_values_stay_params() -> None:
    evil = 'x" or true or "'
    flt = ObservationFilter(
        start=NOW - timedelta(1), stop=NOW, limit=5, tenant=evil, allowed=OPEN_QUANTITIES
    )
    query = observations_query("b", flt)
    assert evil not in query.text and query.params["tenant"] == evil
    assert "sensor_id ==" not in query.text and "contains" not in query.text
    assert "r.quantity =~ /^(" in query.text


def test_etags() -> None:
    tag = etag_of(b"body")
    assert tag.startswith('W/"') and tag == etag_of(b"body") != etag_of(b"other")
    assert etag_matches(tag, tag)
    assert etag_matches(f'"nope", {tag.removeprefix("W/")}', tag)
    assert etag_matches("*", tag)
    assert not etag_matches(None, tag) and not etag_matches('"nope"', tag)


SENSORS = [
    Sensor(
        id="a",
        tenant="t",
        quantities=[
            QuantityInfo(quantity="pm10", unit="ug/m3", last_value=1.0, last_time=NOW),
            QuantityInfo(quantity="temperature", unit="Cel", last_value=2.0, last_time=NOW),
        ],
        location=SensorLocation(lat=52.1, lon=5.1),
    ),
    Sensor(id="b", tenant="t", quantities=[QuantityInfo(quantity="pm10")]),
]


BOX = BBox(min_lon=5, min_lat=52, max_lon=5.2, max_lat=52.2)


def test_filter_sensors() -> None:
    assert [s.id for s in filter_sensors(SENSORS, quantity="pm10")] == ["a", "b"]
    only = filter_sensors(SENSORS, quantity="temperature")
    assert [q.quantity for q in only[0].quantities] == ["temperature"]
    assert [s.id for s in filter_sensors(SENSORS, bbox=BOX)] == ["a"]
    placed = [s.model_copy(update={"district": "centrum"}) if s.id == "b" else s for s in SENSORS]
    assert [s.id for s in filter_sensors(placed, district="centrum")] == ["b"]


def test_geojson_parses_with_a_real_geojson_model() -> None:
    features = [sensor_feature(s) for s in SENSORS] + latest_features(SENSORS)
    fc = FeatureCollection.model_validate(collection(features, {"self": "x"}))
    assert len(fc.features) == 5
    assert fc.features[0].geometry is not None
    assert tuple(fc.features[0].geometry.coordinates) == (5.1, 52.1)  # type: ignore[union-attr]
    assert fc.features[1].geometry is None


def test_privacy_classes_come_from_ingest() -> None:
    assert is_open("pm2_5") and "pm2_5" in OPEN_QUANTITIES
    for hidden in ("rssi", "battery_level", "people_count", "device_mac", "never_heard_of"):
        assert not is_open(hidden) and hidden not in OPEN_QUANTITIES
