"""``GET /v1/observations`` and ``GET /v1/sensors/{sensor_id}/observations``: raw readings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.context import ApiContext, Context
from api.filters import ObservationFilter
from api.formats import encode_cursor
from api.geojson import observation_feature
from api.openapi import OBS_CSV, ObservationPage, content_of
from api.params import RAW_GRACE, is_closed
from api.queries import Paged, observations_asked
from api.routes.pages import next_url, render_page, split_page
from api.routes.parameters import (
    Box,
    Format,
    Page,
    Quantity,
    SensorIdPath,
    SensorIdsQuery,
    Span,
    Tenant,
)

router = APIRouter(tags=["observations"])
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "readings, oldest first",
        "content": content_of(ObservationPage, csv_example=OBS_CSV),
    }
}


@router.get("/v1/sensors/{sensor_id}/observations", response_model=None, responses=RESPONSES)
def observations(
    request: Request,
    ctx: Context,
    sensor_id: SensorIdPath,
    span: Span,
    quantity: Quantity,
    tenant: Tenant,
    fmt: Format,
    page: Page,
) -> Response:
    """Raw readings of one sensor in a time range, oldest first, one page at a time.

    Each reading has its `quality_flags` (empty when it passed every check).
    """
    asked = observations_asked(
        sensor_id=sensor_id,
        span=span,
        quantity=quantity,
        tenant=tenant,
        page=page,
        api=ctx.api,
        now=ctx.now(),
    )
    return _page(request, ctx, fmt, asked)


@router.get("/v1/observations", response_model=None, responses=RESPONSES)
def observations_many(
    request: Request,
    ctx: Context,
    span: Span,
    quantity: Quantity,
    tenant: Tenant,
    bbox: Box,
    fmt: Format,
    page: Page,
    sensor_id: SensorIdsQuery = None,
) -> Response:
    """Raw readings of many sensors in a time range, oldest first, one page at a time.

    Filter by sensors (`sensor_id`, repeated), `quantity`, `tenant` and `bbox` (the
    position each reading reported). Rows are ordered by time, then tenant, sensor and
    quantity, so pages never overlap or skip.
    """
    asked = observations_asked(
        sensor_ids=sensor_id,
        span=span,
        quantity=quantity,
        tenant=tenant,
        bbox=bbox,
        page=page,
        api=ctx.api,
        now=ctx.now(),
    )
    return _page(request, ctx, fmt, asked)


def _page(request: Request, ctx: ApiContext, fmt: str, asked: Paged[ObservationFilter]) -> Response:
    rows, more = split_page(ctx.store.observations(asked.filter), asked.size)
    link = next_url(request, encode_cursor(rows[-1])) if more and rows else None
    closed = is_closed(asked.filter.stop, ctx.now(), RAW_GRACE)
    return render_page(
        request,
        fmt,
        rows,
        link,
        fields=None,
        feature=observation_feature,
        max_age=ctx.max_age(closed=closed),
    )
