"""``GET /health``: whether MQTT, Kafka and InfluxDB answer."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.context import Context
from api.health import Health, check_all

router = APIRouter()


@router.get(
    "/health",
    response_model=Health,
    tags=["platform"],
    responses={503: {"model": Health, "description": "a dependency is unreachable"}},
)
async def health(ctx: Context) -> JSONResponse:
    """Reachability of MQTT, Kafka and InfluxDB: 200 only when all answer."""
    result = await check_all(ctx.settings, ctx.store)
    return JSONResponse(result.model_dump(), status_code=200 if result.status == "ok" else 503)
