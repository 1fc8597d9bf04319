"""The open-data HTTP API, assembled: middlewares, error handlers and the routers.

Each resource's routes live in their own module (:mod:`api.routes`); they read the query
through the shared parameters of :mod:`api.routes.parameters`, check it with
:mod:`api.queries`, ask the :class:`~api.store.Store` of the app's
:class:`~api.context.ApiContext`, and render with :mod:`api.routes.pages`. Only quantities of
the ``open`` privacy class (:mod:`api.privacy`) are ever published.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware

from api.cache import CachedAnswers
from api.catalog import catalog_router
from api.context import ApiContext, Clock, build_context, utc_now
from api.geojson import GEOJSON_MEDIA_TYPE
from api.influx_store import InfluxStore
from api.metrics import install_metrics
from api.openapi import COMMON_RESPONSES, DESCRIPTION, openapi_document
from api.problems import install_problem_handlers
from api.ratelimit import RateLimitMiddleware, rates
from api.routes import (
    admin,
    aggregates,
    alerts,
    bulk,
    experiments,
    experiments_admin,
    health,
    kpis,
    latest,
    observations,
    sensors,
)
from api.sta.routes import sta_router
from api.store import Store
from api.stream import stream_router
from api.web import OPENAPI_TAGS, web_router
from urbanpulse.settings import Settings
from urbanpulse.version import package_version


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Stop the live feed's Kafka consumer (if a client ever started it) at shutdown."""
    yield
    await app.state.context.feed.close()


def create_app(
    settings: Settings, store: Store | None = None, *, clock: Clock = utc_now
) -> FastAPI:
    """Build the API; ``store`` defaults to InfluxDB as configured, ``clock`` to UTC now."""
    ctx = build_context(settings, store or InfluxStore(settings.influx), clock)
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
    app.state.context = ctx  # what every route gets as its ``Context`` parameter
    app.state.live_feed = ctx.feed  # for tests and metrics
    install_problem_handlers(app)
    _add_middlewares(app, ctx)
    install_metrics(app)  # GET /metrics; times requests through the middlewares above
    for router in (
        health.router,
        sensors.router,
        latest.router,
        observations.router,
        aggregates.router,
        kpis.router,
        experiments.router,
        alerts.router,
        *([stream_router(ctx.feed, ctx.api)] if ctx.api.stream_enabled else []),
        admin.router,
        experiments_admin.router,
        sta_router(settings, ctx.recent_sensors),
        bulk.router,
        catalog_router(ctx.api, ctx.daily, ctx.recent_sensors),
        # The web front end: / (city map), /sensors/{id}, /overview, /docs, /redoc,
        # /v1/deadletters.
        web_router(settings, ctx.store, ctx.recent_sensors, title=app.title),
    ):
        app.include_router(router)
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    return app


def _add_middlewares(app: FastAPI, ctx: ApiContext) -> None:
    """Outermost last: CORS, gzip, the rate limit, then the /v1/latest fast path."""
    api = ctx.api
    # /v1/latest answers rendered in full (bytes, ETag, gzip) per URL: a fresh hit is served
    # before routing, with no query, no validation and no serialisation (the map endpoint;
    # target p99 < 50 ms at 200 req/s). Inside the limiter, so limits still apply.
    app.add_middleware(
        CachedAnswers,
        path="/v1/latest",
        params=latest.PARAMS,
        cache=ctx.latest,
        media_type=GEOJSON_MEDIA_TYPE,
        max_age=api.cache_max_age_s,
    )
    anonymous, keyed = rates(api)
    app.add_middleware(
        RateLimitMiddleware,
        keys=ctx.keys,
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
