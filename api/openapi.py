"""What ``/openapi.json`` says beyond what FastAPI derives: the overview, the answers every
route may give, the page models and the content of each format."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from api.formats import AGGREGATE_FIELDS, Aggregate, Alert, Observation
from api.geojson import GEOJSON_MEDIA_TYPE, FeatureCollection
from api.http import PROBLEM_MEDIA_TYPE, Problem
from api.sensors import Sensor
from api.web.docs import add_examples

DESCRIPTION = """
Open data from a city's sensors, published by UrbanPulse under an open licence.

**Start here**

* `GET /v1/sensors` — the sensors that reported recently, their quantities, latest values and
  position (JSON, or GeoJSON with `?format=geojson`). Filter by `tenant`, `quantity`, `bbox`.
* `GET /v1/latest` — a GeoJSON FeatureCollection of every sensor's latest reading per quantity:
  drop it on a map.
* `GET /v1/observations` and `GET /v1/sensors/{sensor_id}/observations` — raw readings in a time
  range, with quality flags.
* `GET /v1/aggregates` and `GET /v1/sensors/{sensor_id}/aggregates` — count, mean, min, max and
  last per 1-minute, 15-minute or 1-hour window.
* `GET /v1/alerts` — alert episodes, open and closed.
* `GET /v1/catalog` — the datasets as a DCAT-AP 3 catalogue (JSON-LD), for data portals.
* `GET /v1/bulk` — daily gzip CSV files of raw readings per tenant and quantity.
* `GET /v1/stream` — a live feed of readings as they are stored (Server-Sent Events), with the
  same filters.

**Conventions**

* Times are RFC 3339 with an offset (`2026-11-27T10:00:00Z`); `from` is inclusive, `to`
  exclusive. Units are UCUM codes (`Cel`, `ug/m3`, `dB`).
* `format` = `json` (default), `csv` (streamed), `geojson` (`application/geo+json`) or `jsonl`
  (JSON Lines); an `Accept` header naming one of those media types works too.
* Long answers come in pages: follow `links.next` (JSON, GeoJSON) or the `Link: rel="next"`
  header (CSV, JSON Lines) until there is none. Pages never overlap or skip a row.
* `bbox` = `west,south,east,north` in degrees (WGS 84).
* Answers carry an `ETag` (send it back in `If-None-Match` for a `304`) and `Cache-Control`;
  answers about a range that has ended are cacheable for a day.
* Errors are `application/problem+json` (RFC 9457); a bad query is a `400` saying what is wrong.
* Only quantities of the *open* privacy class are published; device-health, radio and personal
  quantities never appear here.
"""


class Links(BaseModel):
    """Links of a page: itself, and the next page when there is one."""

    self: str
    next: str | None = None


class SensorList(BaseModel):
    """Sensors that reported recently."""

    data: list[Sensor]


class ObservationPage(BaseModel):
    """One page of raw readings, oldest first."""

    data: list[Observation]
    links: Links


class AggregatePage(BaseModel):
    """One page of window aggregates, oldest window first."""

    data: list[Aggregate]
    links: Links


class AlertPage(BaseModel):
    """One page of alert episodes, oldest start first."""

    data: list[Alert]
    links: Links


def content_of(
    model: type[BaseModel] | None, *, csv_example: str | None = None, rows: bool = True
) -> dict[str, Any]:
    """OpenAPI ``content`` of a 200 answer in each format the route offers."""
    content: dict[str, Any] = {}
    if model is not None:
        content["application/json"] = {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
    content[GEOJSON_MEDIA_TYPE] = {"schema": {"$ref": "#/components/schemas/FeatureCollection"}}
    if rows:
        content["text/csv"] = {"schema": {"type": "string"}, "example": csv_example or ""}
        content["application/x-ndjson"] = {"schema": {"type": "string"}}
    return content


PROBLEM = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    304: {"description": "not modified: the `ETag` sent in `If-None-Match` still holds"},
    400: {"description": "the query is invalid; `detail` says why", "content": PROBLEM},
    401: {"description": "the `X-API-Key` header names no valid key", "content": PROBLEM},
    404: {"description": "no such sensor, or a quantity that is not published", "content": PROBLEM},
    429: {
        "description": "rate limit exceeded: retry after `Retry-After` seconds (docs/api.md)",
        "content": PROBLEM,
    },
    503: {"description": "the data store cannot be reached", "content": PROBLEM},
}
OBS_CSV = (
    "time,tenant,sensor_id,quantity,value,unit,lat,lon,quality_flags\n"
    "2026-11-20T08:00:00Z,demo,air-002,pm2_5,7.25,ug/m3,52.1,5.1,\n"
)
AGG_CSV = (
    ",".join(AGGREGATE_FIELDS) + "\n2026-11-20T08:00:00Z,2026-11-20T09:00:00Z,1h,demo,sensor,"
    "air-002,,pm2_5,60,7.9,5.1,11.2,8.0,ug/m3\n"
)
# Models that only a non-default media type refers to, so FastAPI does not list them itself.
DOCUMENTED_MODELS: tuple[type[BaseModel], ...] = (
    FeatureCollection,
    Problem,
    SensorList,
    Sensor,
    ObservationPage,
    AggregatePage,
    AlertPage,
)


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the models that only non-default media types refer to."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        license_info=app.license_info,
        tags=app.openapi_tags,
    )
    add_examples(schema)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in DOCUMENTED_MODELS:
        found = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in found.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components.setdefault(model.__name__, found)
    app.openapi_schema = schema
    return schema
