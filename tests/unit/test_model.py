from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from urbanpulse.model import (
    EARLIEST,
    LATEST,
    InvalidReading,
    Location,
    Reading,
    by_sensor,
    is_id,
    validated,
)

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def reading(**changes: object) -> Reading:
    fields: dict[str, object] = {
        "tenant": "town",
        "sensor_id": "air-1",
        "quantity": "pm2_5",
        "value": 12.5,
        "unit": "ug/m3",
        "observed_at": T0,
        "received_at": T0 + timedelta(seconds=2),
        "source_format": "json",
        "message_id": "m-1",
    }
    fields.update(changes)
    return validated(**fields)


def test_times_are_normalised_to_utc() -> None:
    cet = timezone(timedelta(hours=1))
    r = reading(observed_at=datetime(2026, 11, 27, 11, 0, tzinfo=cet))
    assert r.observed_at == T0
    assert r.observed_at.utcoffset() == timedelta(0)


def test_naive_times_are_refused() -> None:
    with pytest.raises(InvalidReading, match="timezone"):
        reading(observed_at=datetime(2026, 11, 27, 10, 0))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 1e308, -2e300])
def test_non_finite_values_are_refused(value: float) -> None:
    with pytest.raises(InvalidReading, match="finite"):
        reading(value=value)


def test_the_largest_value_is_accepted() -> None:
    assert reading(value=-1e300).value == -1e300


@pytest.mark.parametrize("sensor_id", ["", "a/b", "a b", "a+b", "x#", "\x00", "s" * 129])
def test_ids_unfit_for_topics_and_tags_are_refused(sensor_id: str) -> None:
    with pytest.raises(InvalidReading):
        reading(sensor_id=sensor_id)


@pytest.mark.parametrize("quantity", ["PM25", "2pm", "pm-25", ""])
def test_quantity_names_are_snake_case(quantity: str) -> None:
    with pytest.raises(InvalidReading):
        reading(quantity=quantity)


def test_round_trip_through_kafka_bytes() -> None:
    r = reading(location=Location(lat=52.1, lon=5.1), quality_flags=("spike",))
    assert Reading.from_bytes(r.to_bytes()) == r


def test_key_groups_a_sensor_of_a_tenant() -> None:
    assert reading().key == b"town/air-1"
    assert reading(tenant="other").key != reading().key


def test_location_range_is_checked() -> None:
    with pytest.raises(InvalidReading, match="location"):
        reading(location={"lat": 91, "lon": 0})


@pytest.mark.parametrize("moment", [EARLIEST - timedelta(days=1), LATEST])
def test_times_influxdb_cannot_store_are_refused(moment: datetime) -> None:
    with pytest.raises(InvalidReading, match="outside"):
        reading(observed_at=moment)


def test_decoding_checks_every_constraint() -> None:
    bad = reading().to_bytes().replace(b'"air-1"', b'"a b"')
    with pytest.raises(InvalidReading, match="sensor_id"):
        Reading.from_bytes(bad)
    wrong_type = reading().to_bytes().replace(b'"air-1"', b"7")
    with pytest.raises(msgspec.ValidationError, match="sensor_id"):
        Reading.from_bytes(wrong_type)


@pytest.mark.parametrize("field", ["tenant", "sensor_id", "quantity", "unit", "probe"])
def test_a_trailing_newline_is_refused_in_every_pattern(field: str) -> None:
    """Python's re (msgspec's) lets "$" match before a final newline; a newline in a tag
    would break InfluxDB's line protocol."""
    good = {"tenant": "town", "sensor_id": "air-1", "quantity": "pm2_5", "unit": "ug/m3"}
    with pytest.raises(InvalidReading, match=field):
        reading(**{field: good.get(field, "1") + "\n"})
    bad = reading().to_bytes().replace(b'"air-1"', b'"air-1\\n"')
    with pytest.raises(InvalidReading, match="sensor_id"):
        Reading.from_bytes(bad)
    assert not is_id("air-1\n")


@given(st.lists(st.tuples(st.sampled_from(["town", "city"]), st.sampled_from(["a", "b", "c"]))))
def test_by_sensor_is_each_sensor_s_readings_in_order(who: list[tuple[str, str]]) -> None:
    readings = [reading(tenant=t, sensor_id=s, message_id=f"m-{n}") for n, (t, s) in enumerate(who)]
    expected: dict[bytes, list[Reading]] = {}
    for r in readings:  # one reading at a time, each with its own key
        expected.setdefault(r.key, []).append(r)
    grouped = by_sensor(readings)
    assert grouped == expected
    assert list(grouped) == list(expected)  # sensors in the order they first came
