"""The open-data HTTP API: routes, parameters and error responses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.flux import ObservationFilter
from api.formats import Observation, csv_lines, decode_cursor, encode_cursor, observation_dict
from api.health import Health, check_all
from api.influx_store import InfluxStore
from api.sensors import Sensor
from urbanpulse.model import ID_PATTERN, QUANTITY_PATTERN
from urbanpulse.settings import Settings

DESCRIPTION = """
Open data from a city's sensors, published by UrbanPulse.

* `GET /v1/sensors` lists the sensors that reported recently, with their quantities and position.
* `GET /v1/sensors/{sensor_id}/observations` returns raw readings in a time range, as JSON or CSV.
* `GET /health` tells whether the platform's services are reachable.

Times are RFC 3339 with an offset (e.g. `2026-11-27T10:00:00Z`); units are UCUM codes.
Errors are `application/problem+json` (RFC 9457).
"""

SensorIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="the sensor's id")]
TenantQuery = Annotated[
    str | None, Query(pattern=ID_PATTERN, description="only this tenant (municipality)")
]


def create_app(settings: Settings, store: InfluxStore | None = None) -> FastAPI:
    """Build the API; ``store`` defaults to InfluxDB as configured."""
    app = FastAPI(title="UrbanPulse open data", version="0.1.0", description=DESCRIPTION)
    data = store or InfluxStore(settings.influx)
    _install_problem_handlers(app)

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/docs")

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

    @app.get("/v1/sensors", tags=["sensors"])
    def sensors(tenant: TenantQuery = None) -> dict[str, list[Sensor]]:
        """Every sensor that reported in the last days, with quantities and position."""
        since = datetime.now(UTC) - timedelta(days=settings.api.sensors_lookback_days)
        return {"data": data.sensors(since, tenant)}

    @app.get(
        "/v1/sensors/{sensor_id}/observations",
        tags=["observations"],
        responses={200: {"content": {"text/csv": {}}, "description": "readings, oldest first"}},
    )
    def observations(
        request: Request,
        sensor_id: SensorIdPath,
        start: Annotated[
            datetime | None, Query(alias="from", description="RFC 3339; default: 24 h before `to`")
        ] = None,
        stop: Annotated[
            datetime | None, Query(alias="to", description="RFC 3339, exclusive; default: now")
        ] = None,
        quantity: Annotated[str | None, Query(pattern=QUANTITY_PATTERN)] = None,
        tenant: TenantQuery = None,
        format: Annotated[Literal["json", "csv"], Query(description="response format")] = "json",
        limit: Annotated[int | None, Query(ge=1, description="readings per page")] = None,
        cursor: Annotated[str | None, Query(description="from a `next` link")] = None,
    ) -> Any:
        """Raw readings of one sensor in a time range, oldest first, one page at a time."""
        flt = _filter(settings, sensor_id, start, stop, quantity, tenant, limit, cursor)
        page = data.observations(_one_more(flt))
        rows, has_more = page[: flt.limit], len(page) > flt.limit
        next_url = _next_url(request, rows[-1]) if has_more and rows else None
        if format == "csv":
            headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
            return StreamingResponse(
                csv_lines(rows), media_type="text/csv; charset=utf-8", headers=headers
            )
        links = {"self": str(request.url)} | ({"next": next_url} if next_url else {})
        return {"data": [observation_dict(o) for o in rows], "links": links}

    return app


def _filter(
    settings: Settings,
    sensor_id: str,
    start: datetime | None,
    stop: datetime | None,
    quantity: str | None,
    tenant: str | None,
    limit: int | None,
    cursor: str | None,
) -> ObservationFilter:
    for name, moment in (("from", start), ("to", stop)):
        if moment is not None and moment.tzinfo is None:
            raise HTTPException(400, f"'{name}' needs a UTC offset, e.g. 2026-11-27T10:00:00Z")
    stop = stop or datetime.now(UTC)
    start = start or stop - timedelta(days=1)
    if start >= stop:
        raise HTTPException(400, "'from' must be before 'to'")
    if stop - start > timedelta(days=settings.api.max_range_days):
        raise HTTPException(400, f"the range may span at most {settings.api.max_range_days} days")
    limit = limit or settings.api.default_limit
    if limit > settings.api.max_limit:
        raise HTTPException(400, f"'limit' may be at most {settings.api.max_limit}")
    try:
        after = decode_cursor(cursor) if cursor else None
    except ValueError as err:
        raise HTTPException(400, f"'cursor': {err}") from None
    return ObservationFilter(start, stop, limit, sensor_id, tenant, quantity, after)


def _one_more(flt: ObservationFilter) -> ObservationFilter:
    """Ask for one row more than a page, to know whether a next page exists."""
    return ObservationFilter(
        flt.start, flt.stop, flt.limit + 1, flt.sensor_id, flt.tenant, flt.quantity, flt.after
    )


def _next_url(request: Request, last: Observation) -> str:
    return str(request.url.include_query_params(cursor=encode_cursor(last)))


def _problem(status: int, title: str, detail: Any, instance: str) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def _install_problem_handlers(app: FastAPI) -> None:
    """Every error is RFC 9457 problem+json; a bad query is a 400 with the reason."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {400: "Bad request", 404: "Not found"}.get(exc.status_code, "Error")
        return _problem(exc.status_code, title, exc.detail, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
            for e in exc.errors()
        )
        return _problem(400, "Bad request", problems, request.url.path)
