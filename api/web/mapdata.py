"""The city map's data in one document: sensors, latest readings, districts, scales (pure).

The map page asks for this once (``/web/map.json``) and then follows ``/v1/stream``. It is made
from the same sensor list as ``/v1/sensors`` and ``/v1/latest`` (open quantities only), so the
map shows exactly what the open-data API publishes. Per reading it says whether the reading is
stale (older than ``web.stale_after_s``) or flagged by the quality checks.

District outlines are derived, not configured: the convex hull of the district's sensors,
widened a little so the sensors on its edge are inside. That needs no boundary files and no
request to anyone; it is an outline of where the district's sensors stand, not its legal border.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from api.formats import rfc3339
from api.sensors import Sensor
from urbanpulse.display import quantity_order, scales_json, sensor_domain

Point = tuple[float, float]  # (lon, lat)
OUTLINE_MARGIN = 0.15  # a hull widened by 15 % around its centre


@dataclass(frozen=True, kw_only=True)
class MapOptions:
    """What the map document needs besides the sensors."""

    tenant: str
    now: datetime
    stale_after: timedelta


def map_document(sensors: Iterable[Sensor], options: MapOptions) -> dict[str, Any]:
    """The map's JSON: every sensor with its latest readings, the districts and the scales."""
    rows = [_sensor_row(s, options) for s in sensors]
    present = {q for row in rows for q in row["readings"]}
    return {
        "tenant": options.tenant,
        "generated_at": rfc3339(options.now),
        "stale_after_s": int(options.stale_after.total_seconds()),
        "quantities": quantity_order(present),
        "districts": district_outlines(sensors_by_district(rows)),
        "sensors": rows,
        "scales": scales_json(),
    }


def _sensor_row(sensor: Sensor, options: MapOptions) -> dict[str, Any]:
    readings = {}
    for q in sensor.quantities:
        readings[q.quantity] = {
            "value": q.last_value,
            "unit": q.unit,
            "time": rfc3339(q.last_time) if q.last_time else None,
            "flags": q.last_quality_flags,
            "stale": q.last_time is None or options.now - q.last_time > options.stale_after,
        }
    where = sensor.location
    return {
        "id": sensor.id,
        "district": sensor.district,
        "domain": sensor_domain([q.quantity for q in sensor.quantities]),
        "lat": where.lat if where else None,
        "lon": where.lon if where else None,
        "readings": readings,
    }


def sensors_by_district(rows: Iterable[dict[str, Any]]) -> dict[str, list[Point]]:
    """Positions of the placed sensors of each district."""
    found: dict[str, list[Point]] = {}
    for row in rows:
        if row["district"] and row["lat"] is not None and row["lon"] is not None:
            found.setdefault(row["district"], []).append((row["lon"], row["lat"]))
    return found


def district_outlines(points: dict[str, list[Point]]) -> list[dict[str, Any]]:
    """Each district's outline as ``[[lat, lon], ...]``; districts of fewer than three distinct
    sensor positions have none (an empty list)."""
    return [
        {"id": name, "outline": [[lat, lon] for lon, lat in widen(convex_hull(found))]}
        for name, found in sorted(points.items())
    ]


def convex_hull(points: Iterable[Point]) -> list[Point]:
    """The convex hull, counter-clockwise, without repeating the first point (Andrew's monotone
    chain); fewer than three distinct points, or all on a line: an empty list."""
    unique = sorted(set(points))
    if len(unique) < 3:
        return []

    def cross(o: Point, a: Point, b: Point) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    def half(ordered: list[Point]) -> list[Point]:
        chain: list[Point] = []
        for p in ordered:
            while len(chain) >= 2 and cross(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain[:-1]

    hull = half(unique) + half(unique[::-1])
    return hull if len(hull) >= 3 else []


def widen(hull: list[Point], margin: float = OUTLINE_MARGIN) -> list[Point]:
    """The hull scaled by ``1 + margin`` around the mean of its corners."""
    if not hull:
        return []
    cx = sum(p[0] for p in hull) / len(hull)
    cy = sum(p[1] for p in hull) / len(hull)
    k = 1 + margin
    return [(cx + (x - cx) * k, cy + (y - cy) * k) for x, y in hull]
