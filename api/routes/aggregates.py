"""``GET /v1/aggregates`` and ``GET /v1/sensors/{sensor_id}/aggregates``: window aggregates."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from api.context import ApiContext, Context
from api.filters import WINDOWS, AggregateFilter, BBox
from api.formats import AGGREGATE_FIELDS, encode_keyset
from api.geojson import aggregate_feature
from api.openapi import AGG_CSV, AggregatePage, content_of
from api.params import is_closed
from api.queries import Paged, aggregate_keys, aggregates_asked
from api.routes.pages import Places, next_url, places_of, render_page, split_page
from api.routes.parameters import (
    Box,
    Format,
    IdItem,
    Page,
    Quantity,
    SensorIdPath,
    SensorIdsQuery,
    Span,
    Tenant,
    WindowQuery,
)

router = APIRouter(tags=["aggregates"])
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "window aggregates, oldest window first",
        "content": content_of(AggregatePage, csv_example=AGG_CSV),
    }
}
ScopeQuery = Annotated[
    Literal["sensor", "district"], Query(description="per sensor (default) or per district")
]
DistrictsQuery = Annotated[
    list[IdItem] | None,
    Query(description="only these districts (scope=district; repeat for several)"),
]


@router.get("/v1/sensors/{sensor_id}/aggregates", response_model=None, responses=RESPONSES)
def sensor_aggregates(
    request: Request,
    ctx: Context,
    sensor_id: SensorIdPath,
    span: Span,
    quantity: Quantity,
    tenant: Tenant,
    fmt: Format,
    page: Page,
    window: WindowQuery = "1h",
) -> Response:
    """Count, mean, min, max and last of one sensor's readings per window (1m, 15m, 1h).

    A window is identified by `window_start` (inclusive) and `window_end` (exclusive).
    Windows that have ended do not change: answers about a range that ended more than a
    window ago may be cached for long.
    """
    asked = aggregates_asked(
        scope="sensor",
        keys=(sensor_id,),
        window=window,
        span=span,
        quantity=quantity,
        tenant=tenant,
        bbox=None,
        page=page,
        api=ctx.api,
        now=ctx.now(),
    )
    return _page(request, ctx, fmt, asked, bbox=None)


@router.get("/v1/aggregates", response_model=None, responses=RESPONSES)
def aggregates(
    request: Request,
    ctx: Context,
    span: Span,
    quantity: Quantity,
    tenant: Tenant,
    bbox: Box,
    fmt: Format,
    page: Page,
    window: WindowQuery = "1h",
    scope: ScopeQuery = "sensor",
    sensor_id: SensorIdsQuery = None,
    district: DistrictsQuery = None,
) -> Response:
    """Window aggregates (count, mean, min, max, last) of many sensors or of districts.

    Filter by `sensor_id` (repeated) or `district` (repeated, with `scope=district`),
    `quantity`, `tenant`, and `bbox` (sensors whose last position is in the box).
    """
    keys = aggregate_keys(
        scope=scope,
        sensor_ids=sensor_id,
        districts=district,
        maximum=ctx.api.max_sensors_per_query,
    )
    asked = aggregates_asked(
        scope=scope,
        keys=keys,
        window=window,
        span=span,
        quantity=quantity,
        tenant=tenant,
        bbox=bbox,
        page=page,
        api=ctx.api,
        now=ctx.now(),
    )
    return _page(request, ctx, fmt, asked, bbox=bbox)


def keys_in_box(keys: tuple[str, ...], box: BBox, places: Places) -> tuple[str, ...]:
    """The sensors of ``keys`` (all sensors when none are named) whose last position lies in
    ``box``, sorted."""
    inside = sorted({s for (_, s), (lat, lon) in places.items() if box.contains(lat=lat, lon=lon)})
    return tuple(k for k in keys if k in inside) if keys else tuple(inside)


def _page(
    request: Request,
    ctx: ApiContext,
    fmt: str,
    asked: Paged[AggregateFilter],
    *,
    bbox: BBox | None,
) -> Response:
    flt = asked.filter
    places = places_of(ctx.recent_sensors(flt.tenant)) if fmt == "geojson" or bbox else {}
    if bbox is not None:
        keys = keys_in_box(flt.keys, bbox, places)
        if not keys:  # no sensor in the box: nothing to ask the store
            return render_page(
                request,
                fmt,
                [],
                None,
                fields=AGGREGATE_FIELDS,
                feature=None,
                max_age=ctx.api.cache_max_age_s,
            )
        flt = replace(flt, keys=keys)
    rows, more = split_page(ctx.store.aggregates(flt), asked.size)
    link = None
    if more and rows:
        last = rows[-1]
        key = (last.sensor_id if flt.scope == "sensor" else last.district) or ""
        token = encode_keyset("agg", last.window_start, last.tenant, key, last.quantity)
        link = next_url(request, token)
    return render_page(
        request,
        fmt,
        rows,
        link,
        fields=AGGREGATE_FIELDS,
        feature=lambda agg: aggregate_feature(agg, places),
        max_age=ctx.max_age(closed=is_closed(flt.stop, ctx.now(), WINDOWS[flt.window])),
    )
