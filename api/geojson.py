"""GeoJSON (RFC 7946) forms of sensors, latest values, observations, aggregates, alerts (pure).

Positions are ``[lon, lat]`` in WGS 84. A row without a known position is a Feature with a
``null`` geometry, which RFC 7946 allows, so no row is dropped for lack of a place.
Collections carry a ``links`` foreign member with ``self`` and, when paged, ``next``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.formats import Aggregate, Alert, Observation, rfc3339, row_dict
from api.sensors import Sensor

GEOJSON_MEDIA_TYPE = "application/geo+json"


class PointGeometry(BaseModel):
    """A GeoJSON Point: ``[lon, lat]``."""

    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float] = Field(description="[longitude, latitude], WGS 84")


class Feature(BaseModel):
    """A GeoJSON Feature: one sensor, reading or aggregate."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: PointGeometry | None
    properties: dict[str, Any]


class FeatureCollection(BaseModel):
    """A GeoJSON FeatureCollection, with ``links`` (self, next) as a foreign member."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature]
    links: dict[str, str] = Field(default_factory=dict)


def _point(lat: float | None, lon: float | None) -> PointGeometry | None:
    if lat is None or lon is None:
        return None
    return PointGeometry(coordinates=(lon, lat))


def sensor_feature(sensor: Sensor) -> Feature:
    """One sensor as a Feature; its quantities (with latest values) are properties."""
    location = sensor.location
    props = row_dict(sensor)
    props.pop("location")
    return Feature(
        id=f"{sensor.tenant}/{sensor.id}",
        geometry=_point(location.lat, location.lon) if location else None,
        properties=props,
    )


def latest_features(sensors: Iterable[Sensor]) -> list[Feature]:
    """One Feature per sensor and quantity with its latest reading, for maps."""
    features = []
    for sensor in sensors:
        location = sensor.location
        for q in sensor.quantities:
            features.append(
                Feature(
                    id=f"{sensor.tenant}/{sensor.id}/{q.quantity}",
                    geometry=_point(location.lat, location.lon) if location else None,
                    properties={
                        "tenant": sensor.tenant,
                        "sensor_id": sensor.id,
                        "quantity": q.quantity,
                        "value": q.last_value,
                        "unit": q.unit,
                        "time": rfc3339(q.last_time) if q.last_time else None,
                        "quality_flags": q.last_quality_flags,
                    },
                )
            )
    return features


def observation_feature(obs: Observation) -> Feature:
    """One raw reading as a Feature at the position it reported."""
    props = row_dict(obs)
    props.pop("lat")
    props.pop("lon")
    return Feature(
        id=f"{obs.tenant}/{obs.sensor_id}/{obs.quantity}/{props['time']}",
        geometry=_point(obs.lat, obs.lon),
        properties=props,
    )


def aggregate_feature(
    agg: Aggregate, locations: dict[tuple[str, str], tuple[float, float]]
) -> Feature:
    """One window aggregate as a Feature at its sensor's last known position (if any)."""
    place = locations.get((agg.tenant, agg.sensor_id or ""))
    key = agg.sensor_id if agg.scope == "sensor" else agg.district
    props = row_dict(agg)
    return Feature(
        id=f"{agg.tenant}/{agg.scope}/{key}/{agg.quantity}/{agg.window}/{props['window_start']}",
        geometry=_point(*place) if place else None,
        properties=props,
    )


def alert_feature(alert: Alert, locations: dict[tuple[str, str], tuple[float, float]]) -> Feature:
    """One alert episode as a Feature at its sensor's last known position (if any)."""
    place = locations.get((alert.tenant, alert.sensor_id))
    props = row_dict(alert)
    return Feature(
        id=f"{alert.tenant}/{alert.sensor_id}/{alert.rule}/{alert.quantity}/{props['started_at']}",
        geometry=PointGeometry(coordinates=(place[1], place[0])) if place else None,
        properties=props,
    )


def collection(features: list[Feature], links: dict[str, str]) -> dict[str, Any]:
    """The JSON of a FeatureCollection with its links."""
    return FeatureCollection(features=features, links=links).model_dump(mode="json")
