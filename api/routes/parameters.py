"""The query parameters the data routes share, each defined once, as typed dependencies.

A route names a parameter by its type (``tenant: Tenant``, ``span: Span``, ``page: Page``);
the dependency carries the OpenAPI description, pattern and examples, reads the value and gives
it a type. Only what is malformed on its own is refused here (a box that is not four numbers);
whether the query can be answered (a published quantity, the range, the page size, the
cursor) is decided by :mod:`api.queries`, once FastAPI has validated every parameter, so a
request keeps getting the same answer whichever of its parameters are wrong.

The dependencies are ``async``: they do no I/O, and FastAPI runs a plain ``def`` dependency in
a worker thread, a hop that costs more than the dependency.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Path, Query, Request, Security
from fastapi.security import APIKeyHeader
from pydantic import StringConstraints

from api.filters import BBox
from api.keys import API_KEY_HEADER
from api.params import Rfc3339, negotiate, parse_bbox
from api.queries import PageAsked, SpanAsked
from urbanpulse.model import ID_PATTERN, QUANTITY_PATTERN

RowFormat = Literal["json", "csv", "geojson", "jsonl"]
ROW_FORMATS: tuple[RowFormat, ...] = ("json", "csv", "geojson", "jsonl")
IdItem = Annotated[str, StringConstraints(pattern=ID_PATTERN)]

# --- parameters of one route kind (declared in the route's own signature) -------------------

SensorIdPath = Annotated[
    str, Path(pattern=ID_PATTERN, description="the sensor's id", examples=["air-002"])
]
SensorIdsQuery = Annotated[
    list[IdItem] | None,
    Query(
        alias="sensor_id",
        description="only these sensors (repeat the parameter for several)",
        examples=[["air-001", "air-002"]],
    ),
]
WindowQuery = Annotated[
    Literal["1m", "15m", "1h"], Query(description="window length of the aggregates")
]


# --- shared parameters, as dependencies ------------------------------------------------------


async def _tenant(
    tenant: Annotated[
        str | None,
        Query(pattern=ID_PATTERN, description="only this tenant (municipality)", examples=["demo"]),
    ] = None,
) -> str | None:
    return tenant


Tenant = Annotated[str | None, Depends(_tenant)]
"""``tenant``: only this municipality."""


async def _quantity(
    quantity: Annotated[
        str | None,
        Query(
            pattern=QUANTITY_PATTERN,
            description="only this quantity (snake_case, e.g. `pm2_5`, `temperature`)",
            examples=["pm2_5"],
        ),
    ] = None,
) -> str | None:
    return quantity


Quantity = Annotated[str | None, Depends(_quantity)]
"""``quantity``: only this quantity (whether it is published is checked later: a 404)."""


async def _district(
    district: Annotated[
        str | None,
        Query(
            pattern=ID_PATTERN,
            description="only sensors the registry places in this district",
            examples=["centrum"],
        ),
    ] = None,
) -> str | None:
    return district


District = Annotated[str | None, Depends(_district)]
"""``district``: only sensors the registry places there."""


async def _bbox(
    bbox: Annotated[
        str | None,
        Query(
            description="only inside this box: `west,south,east,north` in degrees (WGS 84)",
            examples=["5.0,52.0,5.2,52.2"],
            max_length=200,
        ),
    ] = None,
) -> BBox | None:
    return parse_bbox(bbox)


Box = Annotated[BBox | None, Depends(_bbox)]
"""``bbox``: ``west,south,east,north``, parsed (a malformed box is a 400 at once)."""


async def _span(
    start: Annotated[
        Rfc3339 | None,
        Query(
            alias="from",
            description="RFC 3339 with offset, inclusive; default: 24 h before `to`",
            examples=["2026-11-20T00:00:00Z"],
        ),
    ] = None,
    stop: Annotated[
        Rfc3339 | None,
        Query(
            alias="to",
            description="RFC 3339 with offset, exclusive; default: now",
            examples=["2026-11-21T00:00:00Z"],
        ),
    ] = None,
) -> SpanAsked:
    return SpanAsked(start=start, stop=stop)


Span = Annotated[SpanAsked, Depends(_span)]
"""``from`` and ``to`` of readings or windows."""


async def _alert_span(
    start: Annotated[
        Rfc3339 | None,
        Query(
            alias="from",
            description="episodes that started at or after this (RFC 3339); default: "
            "the longest range allowed before `to`",
        ),
    ] = None,
    stop: Annotated[
        Rfc3339 | None,
        Query(alias="to", description="episodes that started before this; default: now"),
    ] = None,
) -> SpanAsked:
    return SpanAsked(start=start, stop=stop)


AlertSpan = Annotated[SpanAsked, Depends(_alert_span)]
"""``from`` and ``to`` of alert episodes: on their start time, a longer default."""


async def _page(
    limit: Annotated[
        int | None, Query(ge=1, description="rows per page (default and maximum: see settings)")
    ] = None,
    cursor: Annotated[
        str | None,
        Query(description="where the page starts: copy it from a `next` link", max_length=2000),
    ] = None,
) -> PageAsked:
    return PageAsked(limit=limit, cursor=cursor)


Page = Annotated[PageAsked, Depends(_page)]
"""``limit`` and ``cursor``: which page of rows."""


async def _row_format(
    request: Request,
    format: Annotated[
        RowFormat | None,
        Query(description="json (default), csv (streamed), geojson or jsonl (JSON Lines)"),
    ] = None,
) -> str:
    return negotiate(format, request.headers.get("accept"), ROW_FORMATS)


Format = Annotated[str, Depends(_row_format)]
"""``format`` of a page of rows, or the ``Accept`` header's choice; json by default."""


async def _sensors_format(
    request: Request,
    format: Annotated[
        Literal["json", "geojson"] | None, Query(description="json (default) or geojson")
    ] = None,
) -> str:
    return negotiate(format, request.headers.get("accept"), ("json", "geojson"))


SensorsFormat = Annotated[str, Depends(_sensors_format)]
"""``format`` of a list of sensors: json or geojson."""


async def _sensor_format(
    request: Request,
    format: Annotated[
        Literal["json", "geojson"] | None,
        Query(description="json (default) or geojson (a Feature in a FeatureCollection)"),
    ] = None,
) -> str:
    return negotiate(format, request.headers.get("accept"), ("json", "geojson"))


SensorFormat = Annotated[str, Depends(_sensor_format)]
"""``format`` of one sensor: json or geojson."""


# --- the API key, as the routes that look at its scope read it -----------------------------

API_KEY = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="ApiKey",
    description="an API key (docs/api.md): `KEY:admin` in `api.api_keys` / `api.api_keys_file` "
    "opens `/v1/admin` and the details of `/readyz` and `/health`",
    auto_error=False,
)
ApiKeyHeader = Annotated[str | None, Security(API_KEY)]
"""``X-API-Key`` as sent (None without), for routes that need a key (a security requirement
in the OpenAPI document); the rate limiter has already refused invalid keys."""
