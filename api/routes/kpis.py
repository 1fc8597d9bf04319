"""``GET /v1/kpis``: the stored indicators and pilot scorecard (docs/kpis.md), JSON or CSV.

Read from the ``kpi`` points the indicator job stores, one ``summary`` field per point, and
answered by splicing the stored summaries (:mod:`api.kpi_answer`): a tenant's 500 sensors over
30 days is one query and no JSON parsing (benchmarks/kpi_api.py measures it).

Who sees what (docs/api.md, "Indicators"): the indicators are open data, like the readings
they describe, with two exceptions that follow the API's privacy rules — ``battery_pct`` (the
battery level is a restricted quantity) and the sensor rows of sensors the registry classes
``restricted`` or ``personal`` (the open API never names them). A request with an admin API
key gets both; the answer's ``access`` says which view it is.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.context import ApiContext, Context
from api.http import cache_control, etag_matches, etag_of
from api.keys import API_KEY_HEADER
from api.kpi_answer import csv_lines, district_needles, in_districts, json_body
from api.kpi_filters import KpiFilter, KpiRow
from api.openapi import PROBLEM
from api.params import BadQuery, Rfc3339, id_list, is_closed, negotiate, time_range
from api.routes.admin import administrator
from api.routes.experiments import registry_snapshot
from api.routes.parameters import IdItem, SensorIdsQuery, Tenant
from urbanpulse.kpi import Period, Scope

router = APIRouter(tags=["indicators"])
ORDER = operator.itemgetter(4, 0, 2)  # KpiRow's time, tenant, subject: oldest period first
DEFAULT_SPAN = timedelta(days=30)
# The job rewrites today's and yesterday's points (and the running week's): after this, a
# period is final and its answer may be cached for long.
FINAL_AFTER = {"day": timedelta(days=2), "week": timedelta(days=8)}
CSV_EXAMPLE = (
    "tenant,scope,subject,period,start,complete,district,interval_inferred,expected,reports,"
    "readings,completeness,uptime,latency_p50_s,latency_p95_s,flag_shares,dead_letters,"
    "since_last_s,score\n"
    "demo,sensor,air-002,day,2026-11-20T00:00:00Z,True,centrum,False,288,286,858,0.993056,"
    "0.993056,1.2,12.5,gap:0.002331,0,300.0,97.31\n"
)
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "indicators per subject and period, oldest period first",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE},
        },
    },
    409: {"description": "the registry file is invalid", "content": PROBLEM},
}
KpiScope = Annotated[
    Scope,
    Query(description="sensor (default): one row per sensor; district; tenant: the scorecard"),
]
KpiPeriod = Annotated[Period, Query(description="day (default) or week (Monday to Sunday)")]
DistrictsQuery = Annotated[
    list[IdItem] | None,
    Query(
        description="only these districts (repeat for several): with scope=sensor the sensors "
        "the registry placed there, with scope=district those districts",
        examples=[["centrum"]],
    ),
]


@dataclass(frozen=True, kw_only=True)
class KpiSpan:
    """``from`` and ``to`` as asked: on the start of the periods."""

    start: datetime | None
    stop: datetime | None


async def _span(
    start: Annotated[
        Rfc3339 | None,
        Query(
            alias="from",
            description="periods that start at or after this (RFC 3339); default: 30 days "
            "before `to`",
            examples=["2026-11-01T00:00:00Z"],
        ),
    ] = None,
    stop: Annotated[
        Rfc3339 | None,
        Query(alias="to", description="periods that start before this; default: now"),
    ] = None,
) -> KpiSpan:
    return KpiSpan(start=start, stop=stop)


async def _format(
    request: Request,
    format: Annotated[
        Literal["json", "csv"] | None, Query(description="json (default) or csv (streamed)")
    ] = None,
) -> str:
    return negotiate(format, request.headers.get("accept"), ("json", "csv"))


async def admin_key(request: Request, ctx: Context) -> bool:
    """True when the request carries a key the administration routes accept (then battery
    levels and restricted sensors are shown); no key, or another key: the open view.

    Read from the headers, not declared as a parameter: the key is optional here, and an
    OpenAPI security requirement would say the route needs one."""
    key = request.headers.get(API_KEY_HEADER)
    if not key:
        return False
    try:
        await administrator(ctx, key)
    except HTTPException:
        return False
    return True


Span = Annotated[KpiSpan, Depends(_span)]
Format = Annotated[str, Depends(_format)]
Admin = Annotated[bool, Depends(admin_key)]


@router.get("/v1/kpis", response_model=None, responses=RESPONSES)
def kpis(
    request: Request,
    ctx: Context,
    tenant: Tenant,
    span: Span,
    fmt: Format,
    admin: Admin,
    scope: KpiScope = "sensor",
    period: KpiPeriod = "day",
    sensor_id: SensorIdsQuery = None,
    district: DistrictsQuery = None,
) -> Response:
    """Indicators and scorecard per sensor, district or tenant, per day or week.

    Completeness, uptime, delivery latency (p50, p95), quality-flag shares, dead letters,
    time since the last reading and the 0-100 `score` (docs/kpis.md), one row per subject
    and period. `battery_pct` and sensors the registry does not publish need an admin key.
    """
    flt, needles = kpi_filter(
        ctx, tenant=tenant, span=span, scope=scope, period=period, sensors=sensor_id,
        districts=district,
    )  # fmt: skip
    hidden = registry_snapshot(ctx).hidden() if scope == "sensor" and not admin else frozenset()
    rows = [
        row
        for row in ctx.store.kpis(flt)
        if (row.tenant, row.subject) not in hidden
        and (not needles or in_districts(row.document, needles))
    ]
    rows.sort(key=ORDER)
    now = ctx.now()
    max_age = ctx.max_age(closed=is_closed(flt.stop, now, FINAL_AFTER[period]))
    if fmt == "csv":
        return StreamingResponse(
            csv_lines(rows, battery=admin),
            media_type="text/csv; charset=utf-8",
            headers=_caching(max_age, admin=admin),
        )
    return _json(request, ctx, rows, admin=admin, max_age=max_age)


def _caching(max_age: int, *, admin: bool) -> dict[str, str]:
    """Open answers are public; an admin's view is for that client only (it holds what the
    open view leaves out), and either varies by the key."""
    control = "private, no-cache" if admin else cache_control(max_age)
    return {"Cache-Control": control, "Vary": "X-API-Key"}


def kpi_filter(
    ctx: ApiContext,
    *,
    tenant: str | None,
    span: KpiSpan,
    scope: Scope,
    period: Period,
    sensors: list[str] | None,
    districts: list[str] | None,
) -> tuple[KpiFilter, tuple[str, ...]]:
    """The checked filter, and the district needles of a sensor-scope district filter."""
    api = ctx.api
    if scope == "sensor" and not tenant:
        # Every town's sensors at once could be hundreds of thousands of rows: one town's.
        raise BadQuery("scope=sensor needs a 'tenant' (compare towns with scope=tenant)")
    if sensors and scope != "sensor":
        raise BadQuery("'sensor_id' needs scope=sensor")
    if districts and scope == "tenant":
        raise BadQuery("'district' needs scope=sensor or scope=district")
    names = id_list("district", districts, api.max_sensors_per_query)
    subjects = id_list("sensor_id", sensors, api.max_sensors_per_query)
    longest = api.kpi_max_sensor_days if (scope, period) == ("sensor", "day") else None
    checked = time_range(
        start=span.start,
        stop=span.stop,
        now=ctx.now(),
        default_span=DEFAULT_SPAN,
        max_days=longest or api.max_range_days,
    )
    flt = KpiFilter(
        start=checked.start,
        stop=checked.stop,
        scope=scope,
        period=period,
        tenant=tenant,
        subjects=names if scope == "district" else subjects,
    )
    return flt, (district_needles(names) if scope == "sensor" else ())


def _json(
    request: Request, ctx: ApiContext, rows: list[KpiRow], *, admin: bool, max_age: int
) -> Response:
    extra = {
        "access": "admin" if admin else "open",
        "weights": ctx.settings.kpis.weights.model_dump(),
        "links": {"self": str(request.url)},
    }
    content = json_body(rows, battery=admin, extra=extra)
    headers = {"ETag": etag_of(content)} | _caching(max_age, admin=admin)
    if etag_matches(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return Response(content=content, media_type="application/json", headers=headers)
