"""``GET /v1/latest``: every sensor's latest reading per quantity, for maps (GeoJSON).

The map endpoint, asked far more often than any other: its answer is kept rendered per URL
(bytes, ETag, gzip) in the context's ``latest`` cache, which ``api.cache.CachedAnswers`` also
serves from before routing.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.cache import Rendered, normalised_url, render_json, respond
from api.context import Context
from api.geojson import GEOJSON_MEDIA_TYPE, collection, latest_features
from api.privacy import require_open
from api.routes.parameters import Box, Quantity, Tenant
from api.sensors import filter_sensors

router = APIRouter(tags=["sensors"])
PARAMS = ("tenant", "quantity", "bbox")
"""The query parameters of ``/v1/latest``: the others do not change its answer or its key."""


@router.get(
    "/v1/latest",
    response_model=None,
    responses={
        200: {
            "description": "one Feature per sensor and quantity, at the sensor's position",
            "content": {
                GEOJSON_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/FeatureCollection"}}
            },
        }
    },
)
async def latest(
    request: Request, ctx: Context, tenant: Tenant, quantity: Quantity, bbox: Box
) -> Response:
    """Every sensor's latest reading per quantity, as a GeoJSON FeatureCollection for maps.

    Each Feature is one sensor and quantity: `properties` has `value`, `unit`, `time` and
    `quality_flags`. Sensors of unknown position have a `null` geometry.
    """
    require_open(quantity)
    url = normalised_url(request.url, PARAMS)

    def render() -> Rendered:
        found = filter_sensors(ctx.recent_sensors(tenant), quantity=quantity, bbox=bbox)
        body = collection(latest_features(found), {"self": url})
        return render_json(body, ctx.api.gzip_min_bytes)

    # A fresh hit is served right here on the event loop (a worker-thread hop costs more
    # than the whole answer); a miss or a stale value is computed in a worker thread.
    rendered = ctx.latest.fresh(url)
    if rendered is None:
        rendered = await run_in_threadpool(ctx.latest.get, url, render)
    return respond(
        request, rendered, media_type=GEOJSON_MEDIA_TYPE, max_age=ctx.api.cache_max_age_s
    )
