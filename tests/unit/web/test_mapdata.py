"""The map document: sensors and their readings, stale and flagged marks, district outlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from api.sensors import QuantityInfo, Sensor, SensorLocation
from api.web.mapdata import MapOptions, convex_hull, map_document, widen

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
OPTIONS = MapOptions(tenant="demo", now=NOW, stale_after=timedelta(hours=1))


def sensor(
    sensor_id: str,
    district: str | None,
    lat: float | None,
    lon: float | None,
    *readings: tuple[str, float, timedelta, list[str]],
) -> Sensor:
    return Sensor(
        id=sensor_id,
        tenant="demo",
        district=district,
        location=SensorLocation(lat=lat, lon=lon) if lat is not None and lon is not None else None,
        quantities=[
            QuantityInfo(
                quantity=q,
                unit="ug/m3",
                last_value=v,
                last_time=NOW - age,
                last_quality_flags=flags,
            )
            for q, v, age, flags in readings
        ],
    )


def test_each_sensor_carries_its_readings_with_stale_and_flags() -> None:
    doc = map_document(
        [
            sensor("air-1", "centrum", 52.1, 5.1, ("pm2_5", 7.5, timedelta(minutes=5), [])),
            sensor("air-2", "west", 52.2, 5.0, ("pm2_5", 30.0, timedelta(hours=2), ["spike"])),
            sensor("wx-1", None, None, None, ("temperature", 3.0, timedelta(0), [])),
        ],
        OPTIONS,
    )
    by_id = {s["id"]: s for s in doc["sensors"]}
    assert by_id["air-1"]["readings"]["pm2_5"] == {
        "value": 7.5,
        "unit": "ug/m3",
        "time": "2026-11-20T11:55:00Z",
        "flags": [],
        "stale": False,
    }
    assert by_id["air-2"]["readings"]["pm2_5"]["stale"] is True
    assert by_id["air-2"]["readings"]["pm2_5"]["flags"] == ["spike"]
    assert by_id["wx-1"]["lat"] is None and by_id["wx-1"]["domain"] == "weather"
    assert doc["quantities"] == ["pm2_5", "temperature"]
    assert doc["stale_after_s"] == 3600 and doc["generated_at"] == "2026-11-20T12:00:00Z"
    assert "pm2_5" in doc["scales"]["quantities"]


def test_a_district_of_three_or_more_places_has_an_outline_around_them() -> None:
    corners = [(52.0, 5.0), (52.0, 5.2), (52.2, 5.2), (52.2, 5.0), (52.1, 5.1)]
    sensors = [
        sensor(f"s{i}", "centrum", lat, lon, ("pm10", 1.0, timedelta(0), []))
        for i, (lat, lon) in enumerate(corners)
    ] + [sensor("lonely", "north", 53.0, 6.0, ("pm10", 1.0, timedelta(0), []))]
    doc = map_document(sensors, OPTIONS)
    outlines = {d["id"]: d["outline"] for d in doc["districts"]}
    assert outlines["north"] == []
    ring = outlines["centrum"]
    assert len(ring) == 4  # the middle sensor is no corner
    lats = [p[0] for p in ring]
    lons = [p[1] for p in ring]
    # widened: every sensor is strictly inside the outline's box
    assert min(lats) < 52.0 and max(lats) > 52.2 and min(lons) < 5.0 and max(lons) > 5.2


def test_the_hull_of_points_on_a_line_or_too_few_is_empty() -> None:
    assert convex_hull([(0, 0), (1, 1)]) == []
    assert convex_hull([(0, 0), (1, 1), (2, 2), (3, 3)]) == []
    assert convex_hull([(0, 0), (0, 0), (1, 0)]) == []
    assert widen([]) == []


def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


coordinate = st.integers(min_value=-1000, max_value=1000).map(lambda v: v / 100)


@given(st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=40))
def test_every_point_lies_inside_or_on_the_hull(points: list[tuple[float, float]]) -> None:
    hull = convex_hull(points)
    if not hull:
        return  # collinear: no outline
    for i, a in enumerate(hull):
        b = hull[(i + 1) % len(hull)]
        # counter-clockwise: every point is left of (or on) every edge
        assert all(cross(a, b, p) >= -1e-9 for p in points)
    assert set(hull) <= set(points)
