"""Probes: ``GET /livez`` (the process answers), ``GET /readyz`` (it can serve data) and
``GET /health`` (the same as ``/readyz``, kept for existing monitors).

What readiness checks and how it stays cheap: :mod:`api.health`. Anonymous callers get the
status alone; an ``admin`` API key also gets each dependency's answer and, under
``urbanpulse up``, the supervisor's report.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.context import Context
from api.health import Health
from api.keys import API_KEY_HEADER

router = APIRouter(tags=["platform"])

READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"model": Health, "description": "a dependency this process needs does not answer"},
}


@router.get("/livez", response_model=Health, response_model_exclude_none=True)
async def livez() -> Health:
    """Liveness: the process answers requests. Asks nothing of any other service.

    For a liveness probe: when this fails, restarting the process is the remedy.
    """
    return Health(status="ok")


@router.get(
    "/readyz", response_model=Health, response_model_exclude_none=True, responses=READY_RESPONSES
)
async def readyz(request: Request, ctx: Context) -> JSONResponse:
    """Readiness: 200 when InfluxDB (and Kafka, when the live feed is on) answer, else 503.

    For a readiness probe or a load balancer. The answer is reused for a few seconds
    (`URBANPULSE_API__READY_CACHE_S`). Only `status` is shown, unless the request carries an
    API key of the admin scope in `X-API-Key`: then each dependency's answer too.
    """
    return await _ready(request, ctx)


@router.get(
    "/health", response_model=Health, response_model_exclude_none=True, responses=READY_RESPONSES
)
async def health(request: Request, ctx: Context) -> JSONResponse:
    """The same answer as `/readyz` (kept for existing monitors).

    It no longer checks MQTT, which the API does not use.
    """
    return await _ready(request, ctx)


async def _ready(request: Request, ctx: Context) -> JSONResponse:
    result = await ctx.readiness.check()
    # Read here, not declared as a parameter: the key is optional, and only its scope matters
    # (the rate limiter has refused an invalid one already).
    key = request.headers.get(API_KEY_HEADER)
    principal = ctx.keys.identify(key) if key else None
    shown = result if principal is not None and principal.admin else result.public()
    return JSONResponse(
        shown.model_dump(exclude_none=True),
        status_code=200 if result.status == "ok" else 503,
        headers={"Cache-Control": "no-store"},
    )
