"""Sensors as the API lists them, assembled from the latest rows of each series (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.filters import BBox


class QuantityInfo(BaseModel):
    """One quantity a sensor reports, with its latest value."""

    quantity: str
    unit: str | None = None
    last_value: float | None = None
    last_time: datetime | None = None
    last_quality_flags: list[str] = Field(default_factory=list)


class SensorLocation(BaseModel):
    """Where the sensor last said it was (WGS 84)."""

    lat: float
    lon: float


class Sensor(BaseModel):
    """A sensor seen in the data."""

    id: str
    tenant: str
    district: str | None = Field(None, description="from the sensor registry, when registered")
    quantities: list[QuantityInfo] = Field(default_factory=list)
    location: SensorLocation | None = None


def sensors_from_rows(rows: Iterable[dict[str, Any]]) -> list[Sensor]:
    """Group ``last()`` rows (one per tenant, sensor, quantity, field) into sensors."""
    series: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    districts: dict[tuple[str, str], str] = {}
    for row in rows:
        key = (row["tenant"], row["sensor_id"])
        if row.get("district"):
            districts[key] = row["district"]
        fields = series.setdefault(key, {}).setdefault(row["quantity"], {})
        fields[row["_field"]] = row["_value"]
        if row["_field"] in ("value", "quality_flags"):
            fields[f"_time.{row['_field']}"] = row["_time"]
    return [
        _sensor(key, districts.get(key), by_quantity) for key, by_quantity in sorted(series.items())
    ]


def _sensor(
    key: tuple[str, str], district: str | None, by_quantity: dict[str, dict[str, Any]]
) -> Sensor:
    quantities = [
        QuantityInfo(
            quantity=name,
            unit=fields.get("unit"),
            last_value=fields.get("value"),
            last_time=fields.get("_time.value"),
            last_quality_flags=_last_flags(fields),
        )
        for name, fields in sorted(by_quantity.items())
    ]
    location = _latest_location(by_quantity)
    tenant, sensor_id = key
    return Sensor(
        id=sensor_id, tenant=tenant, district=district, quantities=quantities, location=location
    )


def _last_flags(fields: dict[str, Any]) -> list[str]:
    """The flags of the latest reading: a reading without flags has no ``quality_flags``
    field (since 2026-12-07; before, an empty one), so the latest flags found belong to the
    latest reading only when their times match."""
    if fields.get("_time.quality_flags") != fields.get("_time.value"):
        return []
    return [f for f in (fields.get("quality_flags") or "").split(",") if f]


def _latest_location(by_quantity: dict[str, dict[str, Any]]) -> SensorLocation | None:
    for fields in by_quantity.values():
        if fields.get("lat") is not None and fields.get("lon") is not None:
            return SensorLocation(lat=fields["lat"], lon=fields["lon"])
    return None


def filter_sensors(
    sensors: Iterable[Sensor],
    *,
    quantity: str | None = None,
    bbox: BBox | None = None,
    district: str | None = None,
) -> list[Sensor]:
    """Sensors that report ``quantity``, stand inside ``bbox`` and belong to ``district``
    (each when given).

    With a quantity, each sensor keeps only that quantity. With a box, sensors of unknown
    position are left out.
    """
    found = []
    for sensor in sensors:
        if district is not None and sensor.district != district:
            continue
        if quantity is not None:
            kept = [q for q in sensor.quantities if q.quantity == quantity]
            if not kept:
                continue
            sensor = sensor.model_copy(update={"quantities": kept})
        if bbox is not None and (
            sensor.location is None
            or not bbox.contains(lat=sensor.location.lat, lon=sensor.location.lon)
        ):
            continue
        found.append(sensor)
    return found
