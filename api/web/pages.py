"""The web pages the API serves: the city map, a sensor's page, the staff overview.

Server-rendered HTML (Jinja2, autoescaped) in the visitor's language, a little JavaScript per
page, and the vendored libraries: nothing is loaded from anywhere but this API, unless a town
configures map tiles (``web.tile_url``). The map's data is one request (``/web/map.json``,
rendered once per ``api.sensors_cache_s`` and shared by every visitor, like ``/v1/latest``),
then the live feed ``/v1/stream`` keeps it current.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Hashable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.cache import Rendered, max_bytes, render_json, rendered_size, respond
from api.context import Context
from api.filters import AlertFilter
from api.formats import Alert
from api.privacy import OPEN_QUANTITIES
from api.sensors import Sensor
from api.store import Store
from api.web import i18n
from api.web.mapdata import MapOptions, map_document
from api.web.overview import OverviewOptions, overview_document
from api.web.refresh import BackgroundRefresh
from api.web.scorecard import hidden_sensors, load_scorecard
from urbanpulse.display import display, quantity_order, scales_json
from urbanpulse.flags import MEANINGS
from urbanpulse.model import ID_PATTERN
from urbanpulse.settings import Settings
from urbanpulse.version import package_version

HERE = Path(__file__).parent
STATIC = HERE / "static"
STATIC_MAX_AGE_S = 86_400  # asset URLs carry the package version: a release gets new URLs
LANG_COOKIE_MAX_AGE_S = 365 * 86_400
ALERT_LIMIT = 1000
# Every quality flag a reading can carry: the stream worker's checks and ingest's two.
ALL_FLAGS = tuple(MEANINGS)

TenantParam = Annotated[
    str | None, Query(pattern=ID_PATTERN, description="the tenant; default: web.tenant")
]
LangParam = Annotated[str | None, Query(max_length=16, description="language: en, de, nl or es")]


def content_security_policy(tile_url: str) -> str:
    """Only this API may be asked for anything; the tile server too, when one is configured."""
    tiles = ""
    if tile_url:  # Leaflet's {s} subdomains become a wildcard
        parts = urlsplit(tile_url)
        tiles = f" {parts.scheme}://{parts.netloc.replace('{s}', '*')}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data:{tiles}; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'self'"
    )


class Pages:
    """Renders the pages of one app: templates, language, tenant, shared page context."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.version = package_version()
        self.csp = content_security_policy(settings.web.tile_url)
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def tenant(self, asked: str | None) -> str:
        """The tenant a page shows: the one asked for, else ``web.tenant``."""
        return asked or self.settings.web.tenant

    def static(self, name: str) -> str:
        """The URL of a static file, versioned so a new release is fetched anew."""
        return f"/web/static/{name}?v={self.version}"

    def render(
        self,
        request: Request,
        template: str,
        *,
        lang_query: str | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """A page in the visitor's language; a ``lang`` query sets the language cookie."""
        lang = i18n.choose(
            lang_query,
            request.cookies.get(i18n.COOKIE),
            request.headers.get("accept-language"),
        )
        strings = i18n.strings(lang)
        api = self.settings.api
        html = self.env.get_template(template).render(
            request=request,
            lang=lang,
            t=strings,
            languages=[
                (code, name, str(request.url.include_query_params(lang=code)))
                for code, name in i18n.LANGUAGES.items()
            ],
            static=self.static,
            licence_url=api.catalog_licence_url,
            publisher=api.publisher_name,
            publisher_url=api.publisher_url,
            **context,
        )
        response = HTMLResponse(
            html,
            status_code=status_code,
            headers={
                "Content-Security-Policy": self.csp,
                "Cache-Control": "no-cache",
                "Vary": "Accept-Language, Cookie",
                "Content-Language": lang,
            },
        )
        chosen = i18n.supported(lang_query)
        if chosen is not None:
            response.set_cookie(
                i18n.COOKIE, chosen, max_age=LANG_COOKIE_MAX_AGE_S, samesite="lax", httponly=True
            )
        return response


def pages_router(
    settings: Settings,
    store: Store,
    recent_sensors: Callable[[str | None], list[Sensor]],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> APIRouter:
    """The pages (``/``, ``/sensors/{id}``, ``/overview``), their data and static files."""
    router = APIRouter(include_in_schema=False)
    pages = Pages(settings)
    router.include_router(_map_routes(pages, recent_sensors, now))
    router.include_router(_sensor_routes(pages, store, recent_sensors, now))
    router.add_api_route("/web/static/{name:path}", static_file, methods=["GET"])
    return router


def _map_routes(
    pages: Pages,
    recent_sensors: Callable[[str | None], list[Sensor]],
    now: Callable[[], datetime],
) -> APIRouter:
    """The city map (``/``) and its data (``/web/map.json``, ``/web/scales.json``)."""
    router = APIRouter(include_in_schema=False)
    web, api = pages.settings.web, pages.settings.api
    stale_after = timedelta(seconds=web.stale_after_s)

    def build_map(tenant: Hashable) -> Rendered:
        options = MapOptions(tenant=str(tenant), now=now(), stale_after=stale_after)
        return render_json(map_document(recent_sensors(str(tenant)), options), api.gzip_min_bytes)

    map_cache = BackgroundRefresh(
        api.sensors_cache_s,
        build_map,
        max_entries=api.cache_max_entries,
        max_bytes=max_bytes(api),
        weigh=rendered_size,
    )

    @router.get("/", response_class=HTMLResponse)
    def city_map(request: Request, tenant: TenantParam = None, lang: LangParam = None) -> Response:
        """The city map: every open sensor of the tenant, coloured by its latest value."""
        return pages.render(
            request,
            "map.html",
            lang_query=lang,
            tenant=pages.tenant(tenant),
            page="map",
            tile_url=web.tile_url,
            tile_attribution=web.tile_attribution,
        )

    @router.get("/web/map.json")
    async def map_json(request: Request, tenant: TenantParam = None) -> Response:
        """The map page's data in one answer: sensors, latest readings, districts, scales."""
        rendered = await map_cache.get(pages.tenant(tenant))
        return respond(
            request, rendered, media_type="application/json", max_age=api.cache_max_age_s
        )

    @router.get("/web/scales.json")
    def scales() -> dict[str, Any]:
        """The colour scales, units and domains of every quantity (also inside map.json)."""
        return scales_json()

    return router


def _sensor_routes(
    pages: Pages,
    store: Store,
    recent_sensors: Callable[[str | None], list[Sensor]],
    now: Callable[[], datetime],
) -> APIRouter:
    """A sensor's page (``/sensors/{id}``) and the staff overview (``/overview``)."""
    router = APIRouter(include_in_schema=False)
    web, api = pages.settings.web, pages.settings.api
    stale_after = timedelta(seconds=web.stale_after_s)

    @router.get("/sensors/{sensor_id}", response_class=HTMLResponse)
    def sensor_page(
        request: Request,
        sensor_id: Annotated[str, PathParam(pattern=ID_PATTERN)],
        tenant: TenantParam = None,
        lang: LangParam = None,
    ) -> Response:
        """One sensor: a chart of its last day and week, latest values, flags, licence."""
        who = pages.tenant(tenant)
        found = [s for s in recent_sensors(who) if s.id == sensor_id]
        if not found:
            return pages.render(
                request,
                "notfound.html",
                lang_query=lang,
                status_code=404,
                tenant=who,
                page="sensor",
                sensor_id=sensor_id,
            )
        stop = now().replace(microsecond=0)
        return pages.render(
            request,
            "sensor.html",
            lang_query=lang,
            tenant=who,
            page="sensor",
            **sensor_page_context(found[0], stop=stop, stale_after=stale_after),
        )

    @router.get("/overview", response_class=HTMLResponse)
    def staff_overview(
        request: Request, ctx: Context, tenant: TenantParam = None, lang: LangParam = None
    ) -> Response:
        """Per domain: sensors reporting and silent, alerts; dead letters from the page."""
        who = pages.tenant(tenant)
        moment = now()
        span = timedelta(hours=web.overview_hours)
        alerts = overview_alerts(
            store, tenant=who, now=moment, span=span, max_range_days=api.max_range_days
        )
        options = OverviewOptions(tenant=who, now=moment, stale_after=stale_after, span=span)
        return pages.render(
            request,
            "overview.html",
            lang_query=lang,
            tenant=who,
            page="overview",
            overview=overview_document(recent_sensors(who), alerts, options),
            hours=web.overview_hours,
            scorecard=load_scorecard(
                store,
                tenant=who,
                now=moment,
                weights=pages.settings.kpis.weights,
                hidden=hidden_sensors(ctx),
            ),
        )

    return router


def static_file(name: str) -> FileResponse:
    """A file of ``api/web/static`` (and nothing outside it)."""
    path = (STATIC / name).resolve()
    if not path.is_relative_to(STATIC.resolve()) or not path.is_file():
        raise HTTPException(404, "no such file")
    media_type, _ = mimetypes.guess_type(path.name)
    return FileResponse(
        path,
        media_type=media_type or "application/octet-stream",
        headers={"Cache-Control": f"public, max-age={STATIC_MAX_AGE_S}"},
    )


def sensor_page_context(
    sensor: Sensor, *, stop: datetime, stale_after: timedelta
) -> dict[str, Any]:
    """What the sensor page shows: its readings in display order, flags, chart ranges."""
    quantities = quantity_order({q.quantity for q in sensor.quantities})
    by_name = {q.quantity: q for q in sensor.quantities}

    def stale(name: str) -> bool:
        last = by_name[name].last_time
        return last is None or stop - last > stale_after

    return {
        "sensor": sensor,
        "readings": [
            {"quantity": name, "info": by_name[name], "shown": display(name), "stale": stale(name)}
            for name in quantities
        ],
        "flags": sorted({f for q in sensor.quantities for f in q.last_quality_flags}),
        "all_flags": ALL_FLAGS,
        "day_from": (stop - timedelta(days=1)).isoformat().replace("+00:00", "Z"),
        "week_from": (stop - timedelta(days=7)).isoformat().replace("+00:00", "Z"),
        "to": stop.isoformat().replace("+00:00", "Z"),
    }


def overview_alerts(
    store: Store, *, tenant: str, now: datetime, span: timedelta, max_range_days: int
) -> list[Alert]:
    """Alerts that started in the last ``span``, and those still open that started before."""
    recent = store.alerts(
        AlertFilter(
            start=now - span,
            stop=now + timedelta(seconds=1),
            limit=ALERT_LIMIT,
            tenant=tenant,
            allowed=OPEN_QUANTITIES,
        )
    )
    still_open = store.alerts(
        AlertFilter(
            start=now - timedelta(days=max_range_days),
            stop=now - span,
            limit=ALERT_LIMIT,
            tenant=tenant,
            state="open",
            allowed=OPEN_QUANTITIES,
        )
    )
    return still_open + recent
