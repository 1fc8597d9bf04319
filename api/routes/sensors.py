"""``GET /v1/sensors`` and ``GET /v1/sensors/{sensor_id}``: the sensors that reported lately."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from api.context import Context
from api.formats import row_dict
from api.geojson import GEOJSON_MEDIA_TYPE, collection, sensor_feature
from api.http import json_response
from api.openapi import SensorList, content_of
from api.privacy import require_open
from api.routes.parameters import (
    Box,
    District,
    Quantity,
    SensorFormat,
    SensorIdPath,
    SensorsFormat,
    Tenant,
)
from api.sensors import Sensor, filter_sensors

router = APIRouter(tags=["sensors"])


@router.get(
    "/v1/sensors",
    response_model=None,
    responses={200: {"description": "the sensors", "content": content_of(SensorList, rows=False)}},
)
def sensors(
    request: Request,
    ctx: Context,
    tenant: Tenant,
    quantity: Quantity,
    district: District,
    bbox: Box,
    fmt: SensorsFormat,
) -> Response:
    """Sensors that reported in the last days, with quantities, latest values and position.

    With `quantity`, only sensors reporting it (and only that quantity); with `district`,
    only sensors the registry places there; with `bbox`, only sensors whose last position
    lies in the box.
    """
    require_open(quantity)
    found = filter_sensors(
        ctx.recent_sensors(tenant), quantity=quantity, bbox=bbox, district=district
    )
    max_age = ctx.api.cache_max_age_s
    if fmt == "geojson":
        body = collection([sensor_feature(s) for s in found], {"self": str(request.url)})
        return json_response(request, body, media_type=GEOJSON_MEDIA_TYPE, max_age=max_age)
    body = {"data": [row_dict(s) for s in found]}
    return json_response(request, body, media_type="application/json", max_age=max_age)


@router.get(
    "/v1/sensors/{sensor_id}",
    response_model=None,
    responses={200: {"description": "the sensor", "content": content_of(Sensor, rows=False)}},
)
def sensor(
    request: Request, ctx: Context, sensor_id: SensorIdPath, tenant: Tenant, fmt: SensorFormat
) -> Response:
    """One sensor: its quantities, latest values and position.

    A sensor id may exist in several tenants; name the `tenant` then (otherwise 400).
    """
    found = [s for s in ctx.recent_sensors(tenant) if s.id == sensor_id]
    if not found:
        raise HTTPException(404, f"no sensor {sensor_id!r} reported in the last days")
    if len(found) > 1:
        raise HTTPException(400, "this sensor id exists in several tenants: name the tenant")
    max_age = ctx.api.cache_max_age_s
    if fmt == "geojson":
        body = collection([sensor_feature(found[0])], {"self": str(request.url)})
        return json_response(request, body, media_type=GEOJSON_MEDIA_TYPE, max_age=max_age)
    return json_response(
        request, row_dict(found[0]), media_type="application/json", max_age=max_age
    )
