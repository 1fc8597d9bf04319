import re
from datetime import timedelta

from streams.points import SensorLabels, reading_line
from tests.unit.streams import helpers
from tests.unit.streams.helpers import T0
from urbanpulse.model import Location, Reading
from urbanpulse.registry import SensorInfo


def reading(**changes: object) -> Reading:
    # a sensor id with the characters line protocol must escape
    return helpers.reading(**{"sensor_id": "air,1=x", **changes})


def series_and_time(line: str) -> tuple[str, str]:
    return line.split(" ", 1)[0], line.rsplit(" ", 1)[1]


def test_line_protocol() -> None:
    line = reading_line(reading(sensor_id="air-1"))
    assert line.startswith("reading,privacy=open,quantity=pm2_5,sensor_id=air-1,tenant=town ")
    # A float field (integers would carry an "i" suffix), so 12 and 12.5 share one series type.
    assert re.search(r"[ ,]value=12(\.0)? ", line)
    assert 'unit="ug/m3"' in line
    assert line.endswith(str(int(T0.timestamp()) * 10**9))


def test_same_sensor_quantity_time_is_the_same_point() -> None:
    first = reading_line(reading())
    again = reading_line(reading(message_id="m2", received_at=T0 + timedelta(minutes=5), value=13))
    assert series_and_time(first) == series_and_time(again)


def test_other_time_or_quantity_is_another_point() -> None:
    base = series_and_time(reading_line(reading()))
    assert series_and_time(reading_line(reading(quantity="pm10"))) != base
    later = reading(observed_at=T0 + timedelta(microseconds=1))
    assert series_and_time(reading_line(later)) != base


def test_location_fields() -> None:
    line = reading_line(reading(location=Location(lat=52.5, lon=5.25)))
    assert "lat=52.5" in line and "lon=5.25" in line


def test_registry_labels_are_tags() -> None:
    info = SensorInfo(
        tenant="town", sensor_id="cam-1", privacy="personal", licence="CC-BY-4.0", sensor_type="cam"
    )
    line = reading_line(reading(sensor_id="cam-1"), SensorLabels.of(info))
    assert line.startswith(
        "reading,licence=CC-BY-4.0,privacy=personal,quantity=pm2_5,sensor_id=cam-1,"
        "sensor_type=cam,tenant=town "
    )


def test_the_registry_district_is_a_tag() -> None:
    info = SensorInfo(tenant="town", sensor_id="cam-1", district="centrum")
    line = reading_line(reading(sensor_id="cam-1"), SensorLabels.of(info))
    assert line.startswith("reading,district=centrum,privacy=open,")


def test_an_unregistered_sensor_is_open_and_unlabelled() -> None:
    assert SensorLabels.of(None) == SensorLabels("open", None, None)
    line = reading_line(reading(sensor_id="x"))
    assert "licence=" not in line and "sensor_type=" not in line
