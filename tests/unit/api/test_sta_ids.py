"""SensorThings ids: stable strings that give back their parts, and their URL form (pure)."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.params import BadQuery
from api.sta.ids import (
    ObservationKey,
    epoch_ns,
    from_epoch_ns,
    join_id,
    key_literal,
    observation_key,
    parse_key,
    split_id,
)
from api.sta.routes import ResourcePath, parse_path

part = st.text(min_size=1, max_size=30).filter(lambda s: "/" not in s)


def test_plain_ids_read_naturally() -> None:
    assert join_id("demo", "air-002") == "demo:air-002"
    assert join_id("demo", "air-002", "pm2_5") == "demo:air-002:pm2_5"


@given(part, part, part)
def test_parts_come_back_whatever_they_contain(tenant: str, sensor: str, quantity: str) -> None:
    assert split_id(join_id(tenant, sensor, quantity), 3, "Datastream") == (
        tenant,
        sensor,
        quantity,
    )


def test_colons_and_tildes_in_parts() -> None:
    ds = join_id("t:1", "climate-003:2", "a~c%3Ab")
    assert ds == "t~c1:climate-003~c2:a~~c%3Ab"
    assert split_id(ds, 3, "Datastream") == ("t:1", "climate-003:2", "a~c%3Ab")
    with pytest.raises(BadQuery, match="'~'"):
        split_id("a~x:b:c", 3, "Datastream")


@pytest.mark.parametrize("bad", ["demo", "a:b:c:d", "a::b", ":a:b"])
def test_wrong_shapes_are_bad_queries(bad: str) -> None:
    with pytest.raises(BadQuery, match="Datastream id"):
        split_id(bad, 3, "Datastream")


def test_observation_ids_carry_epoch_nanoseconds() -> None:
    moment = datetime(2026, 11, 20, 8, 0, 0, 123456, tzinfo=UTC)
    key = ObservationKey("demo", "air:1", "pm2_5", epoch_ns(moment))
    assert key.id == "demo:air~c1:pm2_5:1795161600123456000"
    assert observation_key(key.id) == key
    assert from_epoch_ns(key.time_ns) == moment
    for bad in ("demo:s:pm2_5:soon", "demo:s:pm2_5:-1", "demo:s:pm2_5", "d:s:q:" + "9" * 21):
        with pytest.raises(BadQuery):
            observation_key(bad)


@given(part)
def test_url_keys_round_trip(entity_id: str) -> None:
    from urllib.parse import unquote

    assert parse_key(unquote(key_literal(entity_id))) == entity_id


def test_url_keys() -> None:
    assert parse_key("'demo:air-002'") == "demo:air-002"
    assert parse_key("'it''s'") == "it's"
    assert parse_key("42") == "42"
    assert key_literal("it's") == "'it''s'"
    for bad in ("demo", "'open", "'a'b'", "1.5", ""):
        with pytest.raises(BadQuery):
            parse_key(bad)


def test_resource_paths() -> None:
    assert parse_path("Things") == ResourcePath("Things")
    assert parse_path("Things('a:b')") == ResourcePath("Things", "a:b")
    assert parse_path("Datastreams('a:b:c')/Observations") == ResourcePath(
        "Datastreams", "a:b:c", "Observations"
    )
    assert parse_path("Things('a(b)')/Datastreams/") == ResourcePath(
        "Things", "a(b)", "Datastreams"
    )
    with pytest.raises(LookupError):
        parse_path("HistoricalLocations")
    with pytest.raises(LookupError):
        parse_path("Things('a')/Observations")
    with pytest.raises(BadQuery):
        parse_path("Things/Datastreams")
    with pytest.raises(BadQuery):
        parse_path("Things('a')/Datastreams/Observations")
