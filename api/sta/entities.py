"""SensorThings 1.1 entities built from the platform's sensors and readings (pure).

The mapping (docs/api.md, "SensorThings API"):

* Thing — one sensor of one tenant, id ``tenant:sensor``;
* Location — where that sensor last said it was (GeoJSON Point), same id as its Thing;
* Sensor — the device itself, same id as its Thing;
* ObservedProperty — a published quantity, id = its name (``pm2_5``);
* Datastream — one sensor and one quantity, id ``tenant:sensor:quantity``;
* Observation — one raw reading, id ``tenant:sensor:quantity:<epoch ns>``.

Each entity carries ``@iot.id``, ``@iot.selfLink`` and the navigation links of the entity sets
served here (HistoricalLocations and FeaturesOfInterest are not served, so not linked).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.formats import rfc3339
from api.sensors import Sensor as PlatformSensor
from api.sta.ids import ObservationKey, epoch_ns, join_id, key_literal
from api.sta.store import StaReading
from urbanpulse.quantities import QUANTITIES

OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
UCUM = "https://ucum.org/ucum"
GEOJSON = "application/geo+json"
UNIT_NAMES = {
    "Cel": "degree Celsius",
    "%": "percent",
    "hPa": "hectopascal",
    "ug/m3": "microgram per cubic metre",
    "dB": "decibel",
    "m/s": "metre per second",
    "mm": "millimetre",
    "lx": "lux",
    "[ppm]": "parts per million",
    "deg": "degree",
    "m": "metre",
    "cm": "centimetre",
    "1": "one (dimensionless)",
}


class Entity(BaseModel):
    """What every entity has: its id and its own URL."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(alias="@iot.id")
    self_link: str = Field(alias="@iot.selfLink")
    name: str
    description: str = ""

    def as_json(self) -> dict[str, Any]:
        """The entity's JSON object, spec names, unset optional members left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Point(BaseModel):
    """A GeoJSON Point, ``[lon, lat]``."""

    type: str = "Point"
    coordinates: tuple[float, float]


class Thing(Entity):
    """A sensor of a tenant, as a SensorThings Thing."""

    properties: dict[str, Any] = Field(default_factory=dict)
    locations: str = Field(alias="Locations@iot.navigationLink")
    datastreams: str = Field(alias="Datastreams@iot.navigationLink")


class Location(Entity):
    """Where a Thing last reported it was."""

    encoding_type: str = Field(GEOJSON, alias="encodingType")
    location: Point
    things: str = Field(alias="Things@iot.navigationLink")


class Sensor(Entity):
    """The device that measures; its metadata is the platform's own JSON about it."""

    encoding_type: str = Field("application/json", alias="encodingType")
    metadata: str
    datastreams: str = Field(alias="Datastreams@iot.navigationLink")


class ObservedProperty(Entity):
    """A published quantity."""

    definition: str
    properties: dict[str, Any] = Field(default_factory=dict)
    datastreams: str = Field(alias="Datastreams@iot.navigationLink")


class Unit(BaseModel):
    """A unit of measurement: UCUM code as the symbol."""

    name: str
    symbol: str
    definition: str


class Datastream(Entity):
    """The readings of one quantity from one sensor."""

    unit_of_measurement: Unit = Field(alias="unitOfMeasurement")
    observation_type: str = Field(OM_MEASUREMENT, alias="observationType")
    observed_area: Point | None = Field(None, alias="observedArea")
    properties: dict[str, Any] = Field(default_factory=dict)
    thing: str = Field(alias="Thing@iot.navigationLink")
    sensor: str = Field(alias="Sensor@iot.navigationLink")
    observed_property: str = Field(alias="ObservedProperty@iot.navigationLink")
    observations: str = Field(alias="Observations@iot.navigationLink")


class Observation(BaseModel):
    """One raw reading."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(alias="@iot.id")
    self_link: str = Field(alias="@iot.selfLink")
    phenomenon_time: str = Field(alias="phenomenonTime")
    result_time: str | None = Field(alias="resultTime")
    result: float
    result_quality: list[str] = Field(alias="resultQuality")
    parameters: dict[str, Any] = Field(default_factory=dict)
    datastream: str = Field(alias="Datastream@iot.navigationLink")

    def as_json(self) -> dict[str, Any]:
        """The entity's JSON object (``resultTime`` stays, as null when unknown)."""
        return self.model_dump(mode="json", by_alias=True)


def link(base: str, entity_set: str, entity_id: str, nav: str = "") -> str:
    """``{base}/Set('id')`` or ``{base}/Set('id')/Nav``."""
    url = f"{base}/{entity_set}({key_literal(entity_id)})"
    return f"{url}/{nav}" if nav else url


def unit(code: str) -> Unit:
    """A UCUM code as a SensorThings unitOfMeasurement."""
    return Unit(name=UNIT_NAMES.get(code, code), symbol=code, definition=UCUM)


def observed_property(base: str, quantity: str) -> ObservedProperty:
    """The ObservedProperty of a quantity from the code's quantity table."""
    known = QUANTITIES.get(quantity)
    description = (known.description if known else "") or quantity.replace("_", " ")
    return ObservedProperty(
        id=quantity,
        self_link=link(base, "ObservedProperties", quantity),
        name=quantity,
        description=description,
        definition=f"urn:urbanpulse:quantity:{quantity}",
        properties={"unit": known.unit} if known else {},
        datastreams=link(base, "ObservedProperties", quantity, "Datastreams"),
    )


def observation(base: str, reading: StaReading) -> Observation:
    """One reading as an Observation (quality flags as resultQuality)."""
    key = ObservationKey(
        reading.tenant, reading.sensor_id, reading.quantity, epoch_ns(reading.time)
    )
    params: dict[str, Any] = {}
    if reading.lat is not None and reading.lon is not None:
        params["location"] = Point(coordinates=(reading.lon, reading.lat)).model_dump()
    return Observation(
        id=key.id,
        self_link=link(base, "Observations", key.id),
        phenomenon_time=rfc3339(reading.time),
        result_time=reading.received_at,
        result=reading.value,
        result_quality=list(reading.quality_flags),
        parameters=params,
        datastream=link(base, "Observations", key.id, "Datastream"),
    )


@dataclass
class Catalogue:
    """Every entity but Observations, from the sensors that reported recently, with relations."""

    things: dict[str, Thing] = field(default_factory=dict)
    locations: dict[str, Location] = field(default_factory=dict)
    sensors: dict[str, Sensor] = field(default_factory=dict)
    properties: dict[str, ObservedProperty] = field(default_factory=dict)
    datastreams: dict[str, Datastream] = field(default_factory=dict)
    # navigation: (entity set, id, navigation property) → ids in the target set
    related: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    series: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # datastream → parts

    def relate(self, source: str, source_id: str, nav: str, target_id: str) -> None:
        """Record that ``source(source_id)/nav`` leads to ``target_id``."""
        self.related.setdefault((source, source_id, nav), []).append(target_id)


def catalogue(
    base: str, sensors: list[PlatformSensor], quantities: tuple[str, ...], api_base: str
) -> Catalogue:
    """Build the entities of ``sensors``; ObservedProperties are all ``quantities``."""
    cat = Catalogue()
    for quantity in quantities:
        cat.properties[quantity] = observed_property(base, quantity)
    for sensor in sensors:
        _add_sensor(cat, base, sensor, api_base)
    return cat


def _add_sensor(cat: Catalogue, base: str, sensor: PlatformSensor, api_base: str) -> None:
    thing_id = join_id(sensor.tenant, sensor.id)
    about = f"sensor {sensor.id} of {sensor.tenant}"
    cat.things[thing_id] = Thing(
        id=thing_id,
        self_link=link(base, "Things", thing_id),
        name=sensor.id,
        description=about,
        properties={"tenant": sensor.tenant, "sensor_id": sensor.id},
        locations=link(base, "Things", thing_id, "Locations"),
        datastreams=link(base, "Things", thing_id, "Datastreams"),
    )
    cat.sensors[thing_id] = Sensor(
        id=thing_id,
        self_link=link(base, "Sensors", thing_id),
        name=sensor.id,
        description=about,
        metadata=f"{api_base}/v1/sensors/{key_literal(sensor.id)[1:-1]}?tenant={sensor.tenant}",
        datastreams=link(base, "Sensors", thing_id, "Datastreams"),
    )
    area = None
    if sensor.location is not None:
        area = Point(coordinates=(sensor.location.lon, sensor.location.lat))
        cat.locations[thing_id] = Location(
            id=thing_id,
            self_link=link(base, "Locations", thing_id),
            name=f"position of {sensor.id}",
            description=f"where {about} last reported it was",
            location=area,
            things=link(base, "Locations", thing_id, "Things"),
        )
        cat.relate("Things", thing_id, "Locations", thing_id)
        cat.relate("Locations", thing_id, "Things", thing_id)
    for q in sensor.quantities:
        _add_datastream(cat, base, sensor, q.quantity, q.unit, area)


def _add_datastream(
    cat: Catalogue,
    base: str,
    sensor: PlatformSensor,
    quantity: str,
    code: str | None,
    area: Point | None,
) -> None:
    thing_id = join_id(sensor.tenant, sensor.id)
    ds_id = join_id(sensor.tenant, sensor.id, quantity)
    known = QUANTITIES.get(quantity)
    cat.datastreams[ds_id] = Datastream(
        id=ds_id,
        self_link=link(base, "Datastreams", ds_id),
        name=f"{quantity} at {sensor.id}",
        description=f"{quantity.replace('_', ' ')} measured by sensor {sensor.id}",
        unit_of_measurement=unit(code or (known.unit if known else "1")),
        observed_area=area,
        properties={"tenant": sensor.tenant, "sensor_id": sensor.id, "quantity": quantity},
        thing=link(base, "Datastreams", ds_id, "Thing"),
        sensor=link(base, "Datastreams", ds_id, "Sensor"),
        observed_property=link(base, "Datastreams", ds_id, "ObservedProperty"),
        observations=link(base, "Datastreams", ds_id, "Observations"),
    )
    cat.series[ds_id] = (sensor.tenant, sensor.id, quantity)
    for source, source_id in (
        ("Things", thing_id),
        ("Sensors", thing_id),
        ("ObservedProperties", quantity),
    ):
        cat.relate(source, source_id, "Datastreams", ds_id)
    cat.relate("Datastreams", ds_id, "Thing", thing_id)
    cat.relate("Datastreams", ds_id, "Sensor", thing_id)
    cat.relate("Datastreams", ds_id, "ObservedProperty", quantity)
