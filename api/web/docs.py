"""API documentation that works offline: Swagger UI and ReDoc from vendored assets, and the
OpenAPI metadata (version, tag descriptions, examples) in one place.

FastAPI's own ``/docs`` and ``/redoc`` load their script, stylesheet, favicon and fonts from
CDNs: on a locked-down municipal network they show a blank page. These routes serve the same
pages with every asset from ``/web/static/vendor/`` (``deploy/tools/vendor-web.sh``), Google
fonts off and Swagger's online validator off, so the pages make no request beyond the API.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

VENDOR = "/web/static/vendor"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
# The docs pages may load from this API only. ReDoc 2.5 shows Redocly's logo from its CDN
# (hard-coded, no option turns it off; ReDoc 3 does not, but its npm package pulls in a
# dependency the registry does not serve): this policy keeps the browser from asking.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'"
)


def offline(page: HTMLResponse) -> HTMLResponse:
    """A docs page with its language declared and the policy that keeps it on this API."""
    html = bytes(page.body).decode().replace("<html>", '<html lang="en">', 1)
    return HTMLResponse(html, headers={"Content-Security-Policy": DOCS_POLICY})


OPENAPI_TAGS: list[dict[str, Any]] = [
    {
        "name": "sensors",
        "description": "The sensors that reported recently, and their latest "
        "values (JSON, or GeoJSON for maps).",
    },
    {
        "name": "observations",
        "description": "Raw readings in a time range, with their quality "
        "flags; paged, as JSON, GeoJSON, CSV or JSON Lines.",
    },
    {
        "name": "aggregates",
        "description": "Count, mean, min, max and last per 1-minute, "
        "15-minute or 1-hour window, per sensor or per district.",
    },
    {
        "name": "alerts",
        "description": "Alert episodes (a rule firing for a sensor's quantity), open and closed.",
    },
    {
        "name": "live",
        "description": "A live feed of readings as they are stored (Server-Sent Events).",
    },
    {
        "name": "bulk",
        "description": "Daily gzip CSV files of raw readings per tenant and "
        "quantity, for whole-day downloads.",
    },
    {
        "name": "catalogue",
        "description": "The datasets as a DCAT-AP 3 catalogue (JSON-LD), for data portals.",
    },
    {
        "name": "SensorThings",
        "description": "A read-only subset of OGC SensorThings API 1.1 over the same data.",
    },
    {
        "name": "operations",
        "description": "What a pilot team checks: dead letters counted by "
        "stage and reason (never their contents).",
    },
    {
        "name": "indicators",
        "description": "The pilot scorecard: completeness, uptime, latency, quality and a "
        "0-100 score per sensor, district and tenant, per day and week.",
    },
    {
        "name": "experiments",
        "description": "What a city's change did: the difference in means with its "
        "confidence interval, and how much data stands behind each side.",
    },
    {"name": "platform", "description": "Health of the platform's dependencies."},
    {"name": "admin", "description": "Sensor-registry administration; needs an API key."},
]
"""Tag descriptions of the OpenAPI document, in the order the docs list them."""

LATEST_EXAMPLE = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "id": "demo/air-002/pm2_5",
            "geometry": {"type": "Point", "coordinates": [5.1214, 52.0907]},
            "properties": {
                "tenant": "demo",
                "sensor_id": "air-002",
                "quantity": "pm2_5",
                "value": 7.25,
                "unit": "ug/m3",
                "time": "2026-11-20T08:00:00Z",
                "quality_flags": [],
            },
        }
    ],
    "links": {"self": "http://127.0.0.1:8000/v1/latest?tenant=demo"},
}
SENSORS_EXAMPLE = {
    "data": [
        {
            "id": "air-002",
            "tenant": "demo",
            "district": "centrum",
            "quantities": [
                {
                    "quantity": "pm2_5",
                    "unit": "ug/m3",
                    "last_value": 7.25,
                    "last_time": "2026-11-20T08:00:00Z",
                    "last_quality_flags": [],
                }
            ],
            "location": {"lat": 52.0907, "lon": 5.1214},
        }
    ]
}
# (path, media type of its 200 answer) → an example answer, shown by Swagger UI and ReDoc.
EXAMPLES: dict[tuple[str, str], Any] = {
    ("/v1/latest", "application/geo+json"): LATEST_EXAMPLE,
    ("/v1/sensors", "application/json"): SENSORS_EXAMPLE,
}


def add_examples(schema: dict[str, Any]) -> dict[str, Any]:
    """Put :data:`EXAMPLES` into the 200 answers of an OpenAPI document (in place)."""
    for (path, media), example in EXAMPLES.items():
        answer = schema.get("paths", {}).get(path, {}).get("get", {}).get("responses", {})
        content = answer.get("200", {}).get("content", {}).get(media)
        if content is not None:
            content.setdefault("example", example)
    return schema


def docs_router(openapi_url: str, title: str) -> APIRouter:
    """``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served from the vendored assets."""
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    def swagger() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} · Swagger UI",
            swagger_js_url=f"{VENDOR}/swagger-ui-dist/swagger-ui-bundle.js",
            swagger_css_url=f"{VENDOR}/swagger-ui-dist/swagger-ui.css",
            swagger_favicon_url=f"{VENDOR}/swagger-ui-dist/favicon-32x32.png",
            oauth2_redirect_url=OAUTH2_REDIRECT,
            # Swagger's default validator badge asks validator.swagger.io about the document.
            swagger_ui_parameters={"validatorUrl": None},
        )
        return offline(page)

    @router.get(OAUTH2_REDIRECT)
    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get("/redoc")
    def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} · ReDoc",
            redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{VENDOR}/swagger-ui-dist/favicon-32x32.png",
            with_google_fonts=False,
        )
        return offline(page)

    return router
