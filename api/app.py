"""The open-data HTTP API: routes, parameters and error responses.

Routes are thin: they check the query with :mod:`api.params`, ask :class:`InfluxStore`, and
render with :mod:`api.formats` / :mod:`api.geojson` / :mod:`api.http`. Only quantities of the
``open`` privacy class (:mod:`api.privacy`) are ever published.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, StreamingResponse
from influxdb_client.rest import ApiException
from pydantic import BaseModel, StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from urllib3.exceptions import HTTPError as Urllib3Error

from api.admin import admin_router
from api.bulk import DailyCounts, bulk_router
from api.cache import CachedAnswers, Rendered, TtlCache, render_json, respond
from api.catalog import catalog_router
from api.flux import AggregateFilter, AlertFilter, Keyset, ObservationFilter
from api.formats import (
    AGGREGATE_FIELDS,
    ALERT_FIELDS,
    Aggregate,
    Alert,
    Observation,
    csv_lines,
    decode_cursor,
    decode_keyset,
    encode_cursor,
    encode_keyset,
    jsonl_lines,
    row_dict,
)
from api.geojson import (
    GEOJSON_MEDIA_TYPE,
    Feature,
    FeatureCollection,
    PointGeometry,
    aggregate_feature,
    collection,
    latest_features,
    observation_feature,
    sensor_feature,
)
from api.health import Health, check_all
from api.http import PROBLEM_MEDIA_TYPE, Problem, cache_control, json_response
from api.influx_store import WINDOWS, InfluxStore
from api.metrics import install_metrics
from api.params import (
    BadQuery,
    Rfc3339,
    TimeRange,
    id_list,
    is_closed,
    negotiate,
    page_size,
    parse_bbox,
    time_range,
)
from api.privacy import OPEN_QUANTITIES, is_open
from api.ratelimit import ApiKeys, RateLimitMiddleware, load_keys, rates
from api.sensors import Sensor, filter_sensors
from api.sta.routes import sta_router
from api.stream import Hub, KafkaFeed, stream_router
from api.web import OPENAPI_TAGS, add_examples, package_version, web_router
from urbanpulse.model import ID_PATTERN, QUANTITY_PATTERN
from urbanpulse.settings import Settings

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

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R", bound=BaseModel)

RAW_GRACE = timedelta(minutes=5)  # late readings may still land this long after they happen

SensorIdPath = Annotated[
    str, Path(pattern=ID_PATTERN, description="the sensor's id", examples=["air-002"])
]
TenantQuery = Annotated[
    str | None,
    Query(pattern=ID_PATTERN, description="only this tenant (municipality)", examples=["demo"]),
]
DistrictQuery = Annotated[
    str | None,
    Query(
        pattern=ID_PATTERN,
        description="only sensors the registry places in this district",
        examples=["centrum"],
    ),
]
QuantityQuery = Annotated[
    str | None,
    Query(
        pattern=QUANTITY_PATTERN,
        description="only this quantity (snake_case, e.g. `pm2_5`, `temperature`)",
        examples=["pm2_5"],
    ),
]
BBoxQuery = Annotated[
    str | None,
    Query(
        description="only inside this box: `west,south,east,north` in degrees (WGS 84)",
        examples=["5.0,52.0,5.2,52.2"],
        max_length=200,
    ),
]
FromQuery = Annotated[
    Rfc3339 | None,
    Query(
        alias="from",
        description="RFC 3339 with offset, inclusive; default: 24 h before `to`",
        examples=["2026-11-20T00:00:00Z"],
    ),
]
ToQuery = Annotated[
    Rfc3339 | None,
    Query(
        alias="to",
        description="RFC 3339 with offset, exclusive; default: now",
        examples=["2026-11-21T00:00:00Z"],
    ),
]
LimitQuery = Annotated[
    int | None, Query(ge=1, description="rows per page (default and maximum: see settings)")
]
CursorQuery = Annotated[
    str | None,
    Query(description="where the page starts: copy it from a `next` link", max_length=2000),
]
IdItem = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
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
RowFormat = Literal["json", "csv", "geojson", "jsonl"]
FormatQuery = Annotated[
    RowFormat | None,
    Query(description="json (default), csv (streamed), geojson or jsonl (JSON Lines)"),
]

FORMATS: tuple[RowFormat, ...] = ("json", "csv", "geojson", "jsonl")


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


def _content(
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


def create_app(settings: Settings, store: InfluxStore | None = None) -> FastAPI:
    """Build the API; ``store`` defaults to InfluxDB as configured."""
    # The live feed's Kafka consumer starts with its first client, so an app nobody streams
    # from never needs Kafka; shutdown stops it.
    feed = KafkaFeed(
        settings.kafka, Hub(settings.api.stream_max_clients, settings.api.stream_buffer)
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await feed.close()

    app = FastAPI(
        title="UrbanPulse open data",
        version=package_version(),
        description=DESCRIPTION,
        openapi_tags=OPENAPI_TAGS,
        docs_url=None,  # /docs and /redoc: api.web, from vendored assets (work offline)
        redoc_url=None,
        responses=COMMON_RESPONSES,
        license_info={"name": "CC-BY-4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
        lifespan=lifespan,
    )
    app.state.live_feed = feed  # for tests and metrics
    data = store or InfluxStore(settings.influx)
    api = settings.api
    _install_problem_handlers(app)
    keys = ApiKeys(load_keys(api))
    anonymous, keyed = rates(api)
    # /v1/latest answers rendered in full (bytes, ETag, gzip) per URL: a fresh hit is served
    # before routing, with no query, no validation and no serialisation (the map endpoint;
    # target p99 < 50 ms at 200 req/s). Inside the limiter, so limits still apply.
    latest_cache: TtlCache[Rendered] = TtlCache(api.sensors_cache_s)
    app.add_middleware(
        CachedAnswers,
        path="/v1/latest",
        cache=latest_cache,
        media_type=GEOJSON_MEDIA_TYPE,
        max_age=api.cache_max_age_s,
    )
    app.add_middleware(
        RateLimitMiddleware,
        keys=keys,
        anonymous=anonymous,
        keyed=keyed,
        proxy_hops=api.trusted_proxy_hops,
    )
    app.add_middleware(GZipMiddleware, minimum_size=api.gzip_min_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "HEAD", "OPTIONS"],
        allow_headers=["If-None-Match", "Accept", "X-API-Key"],
        expose_headers=[
            "ETag",
            "Link",
            "Cache-Control",
            "Retry-After",
            "RateLimit",
            "RateLimit-Policy",
        ],
    )
    install_metrics(app)  # GET /metrics; times requests through the middlewares above

    def now() -> datetime:
        return datetime.now(UTC)

    def max_age(closed: bool) -> int:
        return api.cache_closed_max_age_s if closed else api.cache_max_age_s

    sensors_cache: TtlCache[list[Sensor]] = TtlCache(api.sensors_cache_s)

    def recent_sensors(tenant: str | None) -> list[Sensor]:
        def query() -> list[Sensor]:
            since = now() - timedelta(days=api.sensors_lookback_days)
            return data.sensors(since, tenant, OPEN_QUANTITIES)

        return sensors_cache.get(tenant, query)

    @app.get(
        "/health",
        response_model=Health,
        tags=["platform"],
        responses={503: {"model": Health, "description": "a dependency is unreachable"}},
    )
    async def health() -> JSONResponse:
        """Reachability of MQTT, Kafka and InfluxDB: 200 only when all answer."""
        result = await check_all(settings, data)
        return JSONResponse(result.model_dump(), status_code=200 if result.status == "ok" else 503)

    @app.get(
        "/v1/sensors",
        tags=["sensors"],
        response_model=None,
        responses={
            200: {"description": "the sensors", "content": _content(SensorList, rows=False)}
        },
    )
    def sensors(
        request: Request,
        tenant: TenantQuery = None,
        quantity: QuantityQuery = None,
        district: DistrictQuery = None,
        bbox: BBoxQuery = None,
        format: Annotated[
            Literal["json", "geojson"] | None, Query(description="json (default) or geojson")
        ] = None,
    ) -> Response:
        """Sensors that reported in the last days, with quantities, latest values and position.

        With `quantity`, only sensors reporting it (and only that quantity); with `district`,
        only sensors the registry places there; with `bbox`, only sensors whose last position
        lies in the box.
        """
        box = _check(parse_bbox, bbox)
        _check_open(quantity)
        fmt = negotiate(format, request.headers.get("accept"), ("json", "geojson"))
        found = filter_sensors(recent_sensors(tenant), quantity, box, district)
        if fmt == "geojson":
            body = collection([sensor_feature(s) for s in found], {"self": str(request.url)})
            return json_response(
                request, body, media_type=GEOJSON_MEDIA_TYPE, max_age=api.cache_max_age_s
            )
        body = {"data": [row_dict(s) for s in found]}
        return json_response(
            request, body, media_type="application/json", max_age=api.cache_max_age_s
        )

    @app.get(
        "/v1/sensors/{sensor_id}",
        tags=["sensors"],
        response_model=None,
        responses={
            200: {"description": "the sensor", "content": _content(Sensor, rows=False)},
        },
    )
    def sensor(
        request: Request,
        sensor_id: SensorIdPath,
        tenant: TenantQuery = None,
        format: Annotated[
            Literal["json", "geojson"] | None,
            Query(description="json (default) or geojson (a Feature in a FeatureCollection)"),
        ] = None,
    ) -> Response:
        """One sensor: its quantities, latest values and position.

        A sensor id may exist in several tenants; name the `tenant` then (otherwise 400).
        """
        fmt = negotiate(format, request.headers.get("accept"), ("json", "geojson"))
        found = [s for s in recent_sensors(tenant) if s.id == sensor_id]
        if not found:
            raise HTTPException(404, f"no sensor {sensor_id!r} reported in the last days")
        if len(found) > 1:
            raise HTTPException(400, "this sensor id exists in several tenants: name the tenant")
        if fmt == "geojson":
            body = collection([sensor_feature(found[0])], {"self": str(request.url)})
            return json_response(
                request, body, media_type=GEOJSON_MEDIA_TYPE, max_age=api.cache_max_age_s
            )
        return json_response(
            request,
            row_dict(found[0]),
            media_type="application/json",
            max_age=api.cache_max_age_s,
        )

    @app.get(
        "/v1/latest",
        tags=["sensors"],
        response_model=None,
        responses={
            200: {
                "description": "one Feature per sensor and quantity, at the sensor's position",
                "content": {
                    GEOJSON_MEDIA_TYPE: {
                        "schema": {"$ref": "#/components/schemas/FeatureCollection"}
                    }
                },
            }
        },
    )
    async def latest(
        request: Request,
        tenant: TenantQuery = None,
        quantity: QuantityQuery = None,
        bbox: BBoxQuery = None,
    ) -> Response:
        """Every sensor's latest reading per quantity, as a GeoJSON FeatureCollection for maps.

        Each Feature is one sensor and quantity: `properties` has `value`, `unit`, `time` and
        `quality_flags`. Sensors of unknown position have a `null` geometry.
        """
        box = _check(parse_bbox, bbox)
        _check_open(quantity)
        url = str(request.url)

        def render() -> Rendered:
            found = filter_sensors(recent_sensors(tenant), quantity, box)
            body = collection(latest_features(found), {"self": url})
            return render_json(body, api.gzip_min_bytes)

        # A fresh hit is served right here on the event loop (a worker-thread hop costs more
        # than the whole answer); a miss or a stale value is computed in a worker thread.
        rendered = latest_cache.fresh(url)
        if rendered is None:
            rendered = await run_in_threadpool(latest_cache.get, url, render)
        return respond(
            request, rendered, media_type=GEOJSON_MEDIA_TYPE, max_age=api.cache_max_age_s
        )

    def observations_page(
        request: Request,
        *,
        sensor_ids: tuple[str, ...],
        one_sensor: str | None,
        start: datetime | None,
        stop: datetime | None,
        quantity: str | None,
        tenant: str | None,
        bbox: str | None,
        format: RowFormat | None,
        limit: int | None,
        cursor: str | None,
    ) -> Response:
        fmt = negotiate(format, request.headers.get("accept"), FORMATS)
        box = _check(parse_bbox, bbox)
        _check_open(quantity)
        span = _range(start, stop, now(), api.max_raw_range_days)
        size = _check(lambda: page_size(limit, default=api.default_limit, maximum=api.max_limit))
        after: Keyset | None = _check(_observation_cursor, cursor) if cursor else None
        flt = ObservationFilter(
            span.start,
            span.stop,
            size + 1,
            one_sensor,
            tenant,
            quantity,
            after,
            sensor_ids=sensor_ids,
            bbox=box,
            allowed=OPEN_QUANTITIES,
        )
        page = data.observations(flt)
        rows, more = page[:size], len(page) > size
        next_url = _next_url(request, encode_cursor(rows[-1])) if more and rows else None
        return _render(
            request,
            fmt,
            rows,
            next_url,
            fields=None,
            feature=observation_feature,
            max_age=max_age(is_closed(span.stop, now(), RAW_GRACE)),
        )

    @app.get(
        "/v1/sensors/{sensor_id}/observations",
        tags=["observations"],
        response_model=None,
        responses={
            200: {
                "description": "readings, oldest first",
                "content": _content(ObservationPage, csv_example=OBS_CSV),
            }
        },
    )
    def observations(
        request: Request,
        sensor_id: SensorIdPath,
        start: FromQuery = None,
        stop: ToQuery = None,
        quantity: QuantityQuery = None,
        tenant: TenantQuery = None,
        format: FormatQuery = None,
        limit: LimitQuery = None,
        cursor: CursorQuery = None,
    ) -> Response:
        """Raw readings of one sensor in a time range, oldest first, one page at a time.

        Each reading has its `quality_flags` (empty when it passed every check).
        """
        return observations_page(
            request,
            sensor_ids=(),
            one_sensor=sensor_id,
            start=start,
            stop=stop,
            quantity=quantity,
            tenant=tenant,
            bbox=None,
            format=format,
            limit=limit,
            cursor=cursor,
        )

    @app.get(
        "/v1/observations",
        tags=["observations"],
        response_model=None,
        responses={
            200: {
                "description": "readings, oldest first",
                "content": _content(ObservationPage, csv_example=OBS_CSV),
            }
        },
    )
    def observations_many(
        request: Request,
        sensor_id: SensorIdsQuery = None,
        start: FromQuery = None,
        stop: ToQuery = None,
        quantity: QuantityQuery = None,
        tenant: TenantQuery = None,
        bbox: BBoxQuery = None,
        format: FormatQuery = None,
        limit: LimitQuery = None,
        cursor: CursorQuery = None,
    ) -> Response:
        """Raw readings of many sensors in a time range, oldest first, one page at a time.

        Filter by sensors (`sensor_id`, repeated), `quantity`, `tenant` and `bbox` (the
        position each reading reported). Rows are ordered by time, then tenant, sensor and
        quantity, so pages never overlap or skip.
        """
        ids = _check(lambda: id_list("sensor_id", sensor_id, api.max_sensors_per_query))
        return observations_page(
            request,
            sensor_ids=ids,
            one_sensor=None,
            start=start,
            stop=stop,
            quantity=quantity,
            tenant=tenant,
            bbox=bbox,
            format=format,
            limit=limit,
            cursor=cursor,
        )

    def aggregates_page(
        request: Request,
        *,
        scope: Literal["sensor", "district"],
        keys: tuple[str, ...],
        window: str,
        start: datetime | None,
        stop: datetime | None,
        quantity: str | None,
        tenant: str | None,
        bbox: str | None,
        format: RowFormat | None,
        limit: int | None,
        cursor: str | None,
    ) -> Response:
        fmt = negotiate(format, request.headers.get("accept"), FORMATS)
        box = _check(parse_bbox, bbox)
        _check_open(quantity)
        span = _range(start, stop, now(), api.max_range_days)
        size = _check(lambda: page_size(limit, default=api.default_limit, maximum=api.max_limit))
        after = _check(_aggregate_cursor, cursor) if cursor else None
        places = _places(recent_sensors(tenant)) if fmt == "geojson" or box else {}
        if box is not None:
            if scope != "sensor":
                raise HTTPException(400, "'bbox' applies to scope=sensor only")
            inside = tuple(
                sorted({s for (_, s), (lat, lon) in places.items() if box.contains(lat, lon)})
            )
            keys = tuple(k for k in keys if k in inside) if keys else inside
            if not keys:
                return _render(
                    request,
                    fmt,
                    [],
                    None,
                    fields=AGGREGATE_FIELDS,
                    feature=None,
                    max_age=api.cache_max_age_s,
                )
        flt = AggregateFilter(
            span.start,
            span.stop,
            size + 1,
            window,
            scope,
            tenant,
            keys,
            quantity,
            after,
            allowed=OPEN_QUANTITIES,
        )
        page = data.aggregates(flt)
        rows, more = page[:size], len(page) > size
        next_url = None
        if more and rows:
            last = rows[-1]
            key = (last.sensor_id if scope == "sensor" else last.district) or ""
            token = encode_keyset("agg", last.window_start, last.tenant, key, last.quantity)
            next_url = _next_url(request, token)
        return _render(
            request,
            fmt,
            rows,
            next_url,
            fields=AGGREGATE_FIELDS,
            feature=lambda agg: aggregate_feature(agg, places),
            max_age=max_age(is_closed(span.stop, now(), WINDOWS[window])),
        )

    @app.get(
        "/v1/sensors/{sensor_id}/aggregates",
        tags=["aggregates"],
        response_model=None,
        responses={
            200: {
                "description": "window aggregates, oldest window first",
                "content": _content(AggregatePage, csv_example=AGG_CSV),
            }
        },
    )
    def sensor_aggregates(
        request: Request,
        sensor_id: SensorIdPath,
        window: WindowQuery = "1h",
        start: FromQuery = None,
        stop: ToQuery = None,
        quantity: QuantityQuery = None,
        tenant: TenantQuery = None,
        format: FormatQuery = None,
        limit: LimitQuery = None,
        cursor: CursorQuery = None,
    ) -> Response:
        """Count, mean, min, max and last of one sensor's readings per window (1m, 15m, 1h).

        A window is identified by `window_start` (inclusive) and `window_end` (exclusive).
        Windows that have ended do not change: answers about a range that ended more than a
        window ago may be cached for long.
        """
        return aggregates_page(
            request,
            scope="sensor",
            keys=(sensor_id,),
            window=window,
            start=start,
            stop=stop,
            quantity=quantity,
            tenant=tenant,
            bbox=None,
            format=format,
            limit=limit,
            cursor=cursor,
        )

    @app.get(
        "/v1/aggregates",
        tags=["aggregates"],
        response_model=None,
        responses={
            200: {
                "description": "window aggregates, oldest window first",
                "content": _content(AggregatePage, csv_example=AGG_CSV),
            }
        },
    )
    def aggregates(
        request: Request,
        window: WindowQuery = "1h",
        scope: Annotated[
            Literal["sensor", "district"],
            Query(description="per sensor (default) or per district"),
        ] = "sensor",
        sensor_id: SensorIdsQuery = None,
        district: Annotated[
            list[IdItem] | None,
            Query(description="only these districts (scope=district; repeat for several)"),
        ] = None,
        start: FromQuery = None,
        stop: ToQuery = None,
        quantity: QuantityQuery = None,
        tenant: TenantQuery = None,
        bbox: BBoxQuery = None,
        format: FormatQuery = None,
        limit: LimitQuery = None,
        cursor: CursorQuery = None,
    ) -> Response:
        """Window aggregates (count, mean, min, max, last) of many sensors or of districts.

        Filter by `sensor_id` (repeated) or `district` (repeated, with `scope=district`),
        `quantity`, `tenant`, and `bbox` (sensors whose last position is in the box).
        """
        if scope == "sensor" and district:
            raise HTTPException(400, "'district' needs scope=district")
        if scope == "district" and sensor_id:
            raise HTTPException(400, "'sensor_id' needs scope=sensor")
        name, values = ("sensor_id", sensor_id) if scope == "sensor" else ("district", district)
        keys = _check(lambda: id_list(name, values, api.max_sensors_per_query))
        return aggregates_page(
            request,
            scope=scope,
            keys=keys,
            window=window,
            start=start,
            stop=stop,
            quantity=quantity,
            tenant=tenant,
            bbox=bbox,
            format=format,
            limit=limit,
            cursor=cursor,
        )

    @app.get(
        "/v1/alerts",
        tags=["alerts"],
        response_model=None,
        responses={
            200: {
                "description": "alert episodes, oldest start first",
                "content": _content(AlertPage),
            }
        },
    )
    def alerts(
        request: Request,
        state: Annotated[
            Literal["open", "closed"] | None,
            Query(description="`open` for current alerts, `closed` for past ones; default both"),
        ] = None,
        sensor_id: Annotated[
            str | None, Query(pattern=ID_PATTERN, description="only this sensor")
        ] = None,
        rule: Annotated[
            str | None,
            Query(pattern=ID_PATTERN, description="only this rule", examples=["pm2_5_high"]),
        ] = None,
        quantity: QuantityQuery = None,
        tenant: TenantQuery = None,
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
        format: FormatQuery = None,
        limit: LimitQuery = None,
        cursor: CursorQuery = None,
    ) -> Response:
        """Alert episodes, current (`state=open`) and past (`state=closed`), oldest first.

        An episode is one rule firing for one sensor's quantity: `started_at`, `ended_at`
        (null while open), the triggering `value` and a `message`. GeoJSON places each at its
        sensor's last known position.
        """
        fmt = negotiate(format, request.headers.get("accept"), FORMATS)
        _check_open(quantity)
        span = _range(start, stop, now(), api.max_range_days, timedelta(days=api.max_range_days))
        size = _check(lambda: page_size(limit, default=api.default_limit, maximum=api.max_limit))
        after = _check(_alert_cursor, cursor) if cursor else None
        flt = AlertFilter(
            span.start,
            span.stop,
            size + 1,
            tenant,
            sensor_id,
            quantity,
            rule,
            state,
            after,
            allowed=OPEN_QUANTITIES,
        )
        page = data.alerts(flt)
        rows, more = page[:size], len(page) > size
        next_url = None
        if more and rows:
            a = rows[-1]
            token = encode_keyset("alert", a.started_at, a.tenant, a.sensor_id, a.rule, a.quantity)
            next_url = _next_url(request, token)
        places = _places(recent_sensors(tenant)) if fmt == "geojson" else {}
        return _render(
            request,
            fmt,
            rows,
            next_url,
            fields=ALERT_FIELDS,
            feature=lambda alert: _alert_feature(alert, places),
            max_age=api.cache_max_age_s,
        )

    app.include_router(stream_router(feed, api))
    app.include_router(admin_router(settings.streams.registry_path, keys))
    app.include_router(sta_router(settings, recent_sensors))
    # Daily counts per tenant, quantity and day: the bulk listing, and the catalogue's spans.
    daily = DailyCounts(data, api.bulk_days, api.catalog_cache_s, RAW_GRACE)
    app.include_router(bulk_router(api, data, daily))
    app.include_router(catalog_router(api, daily, recent_sensors))
    # The web front end: / (city map), /sensors/{id}, /overview, /docs, /redoc, /v1/deadletters.
    app.include_router(web_router(settings, data, recent_sensors, title=app.title))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _check(fn: Callable[..., T], *args: Any) -> T:
    """Run a pure check; its BadQuery becomes a 400 problem."""
    try:
        return fn(*args)
    except BadQuery as err:
        raise HTTPException(400, str(err)) from None


def _check_open(quantity: str | None) -> None:
    if quantity is not None and not is_open(quantity):
        raise HTTPException(404, f"quantity {quantity!r} is not published as open data")


def _range(
    start: datetime | None,
    stop: datetime | None,
    now: datetime,
    max_days: int,
    default_span: timedelta = timedelta(days=1),
) -> TimeRange:
    return _check(
        lambda: time_range(start, stop, now=now, default_span=default_span, max_days=max_days)
    )


def _observation_cursor(cursor: str) -> Keyset:
    try:
        return decode_cursor(cursor)
    except ValueError as err:
        raise BadQuery(f"'cursor': {err}") from None


def _aggregate_cursor(cursor: str) -> Keyset:
    try:
        moment, (tenant, key, quantity) = decode_keyset("agg", cursor, 3)
    except ValueError as err:
        raise BadQuery(f"'cursor': {err}") from None
    return moment, tenant, key, quantity


def _alert_cursor(cursor: str) -> tuple[datetime, str, str, str, str]:
    try:
        moment, (tenant, sensor_id, rule, quantity) = decode_keyset("alert", cursor, 4)
    except ValueError as err:
        raise BadQuery(f"'cursor': {err}") from None
    return moment, tenant, sensor_id, rule, quantity


def _places(sensors: Iterable[Sensor]) -> dict[tuple[str, str], tuple[float, float]]:
    return {(s.tenant, s.id): (s.location.lat, s.location.lon) for s in sensors if s.location}


def _alert_feature(alert: Alert, places: dict[tuple[str, str], tuple[float, float]]) -> Feature:
    place = places.get((alert.tenant, alert.sensor_id))
    props = row_dict(alert)
    return Feature(
        id=f"{alert.tenant}/{alert.sensor_id}/{alert.rule}/{alert.quantity}/{props['started_at']}",
        geometry=PointGeometry(coordinates=(place[1], place[0])) if place else None,
        properties=props,
    )


def _next_url(request: Request, cursor: str) -> str:
    return str(request.url.include_query_params(cursor=cursor))


def _render(
    request: Request,
    fmt: str,
    rows: Sequence[R],
    next_url: str | None,
    *,
    fields: tuple[str, ...] | None,
    feature: Callable[[R], Feature] | None,
    max_age: int,
) -> Response:
    """One page of rows in the asked format, with its next link (body or Link header)."""
    links = {"self": str(request.url)} | ({"next": next_url} if next_url else {})
    link = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
    if fmt in ("csv", "jsonl"):
        headers = link | {"Cache-Control": cache_control(max_age)}
        if fmt == "csv":
            lines = csv_lines(rows, fields) if fields else csv_lines(rows)
            return StreamingResponse(lines, media_type="text/csv; charset=utf-8", headers=headers)
        return StreamingResponse(
            jsonl_lines(rows), media_type="application/x-ndjson", headers=headers
        )
    if fmt == "geojson":
        features = [feature(r) for r in rows] if feature else []
        return json_response(
            request, collection(features, links), media_type=GEOJSON_MEDIA_TYPE, max_age=max_age
        )
    body = {"data": [row_dict(r) for r in rows], "links": links}
    return json_response(
        request, body, media_type="application/json", max_age=max_age, headers=link
    )


def _openapi(app: FastAPI) -> dict[str, Any]:
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
    for model in (
        FeatureCollection,
        Problem,
        SensorList,
        Sensor,
        ObservationPage,
        AggregatePage,
        AlertPage,
    ):
        found = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in found.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components.setdefault(model.__name__, found)
    app.openapi_schema = schema
    return schema


def _allowed_methods(app: FastAPI, request: Request) -> str | None:
    """Every method some route of ``app`` answers at the request's path (asked of the routes
    themselves: FastAPI keeps included routers as routes of their own)."""
    found = [
        method
        for method in ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
        if any(
            route.matches(dict(request.scope, method=method))[0] == Match.FULL
            for route in app.routes
        )
    ]
    return ", ".join(found) or None


TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    422: "Unprocessable content",
    429: "Too many requests",
    503: "Service unavailable",
}


def _problem(
    status: int, title: str, detail: Any, instance: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _install_problem_handlers(app: FastAPI) -> None:
    """Every error is RFC 9457 problem+json; a bad query is a 400 with the reason."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = TITLES.get(exc.status_code, "Error")
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            # Starlette names only the first route of the path; with several (the admin
            # routes), Allow must list the methods of them all (RFC 9110, 15.5.6).
            allowed = _allowed_methods(app, request)
            headers = (headers or {}) | ({"Allow": allowed} if allowed else {})
        return _problem(exc.status_code, title, exc.detail, request.url.path, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
            for e in exc.errors()
        )
        # A bad query is a 400; a request body that is not what the route takes (the admin
        # routes) is a 422, as HTTP semantics have it.
        status = 422 if any(e["loc"][:1] == ("body",) for e in exc.errors()) else 400
        return _problem(status, TITLES[status], problems, request.url.path)

    async def store_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("InfluxDB did not answer %s: %s", request.url.path, exc)
        detail = "the data store did not answer; try again shortly"
        return _problem(503, "Service unavailable", detail, request.url.path)

    app.add_exception_handler(ApiException, store_down)
    app.add_exception_handler(Urllib3Error, store_down)
