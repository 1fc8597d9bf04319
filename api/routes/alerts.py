"""``GET /v1/alerts``: alert episodes, open and closed."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from api.context import Context
from api.formats import ALERT_FIELDS, encode_keyset
from api.geojson import alert_feature
from api.openapi import AlertPage, content_of
from api.queries import alerts_asked
from api.routes.pages import next_url, places_of, render_page, split_page
from api.routes.parameters import AlertSpan, Format, Page, Quantity, Tenant
from urbanpulse.model import ID_PATTERN

router = APIRouter(tags=["alerts"])

StateQuery = Annotated[
    Literal["open", "closed"] | None,
    Query(description="`open` for current alerts, `closed` for past ones; default both"),
]
AlertSensorQuery = Annotated[str | None, Query(pattern=ID_PATTERN, description="only this sensor")]
RuleQuery = Annotated[
    str | None, Query(pattern=ID_PATTERN, description="only this rule", examples=["pm2_5_high"])
]


@router.get(
    "/v1/alerts",
    response_model=None,
    responses={
        200: {"description": "alert episodes, oldest start first", "content": content_of(AlertPage)}
    },
)
def alerts(
    request: Request,
    ctx: Context,
    quantity: Quantity,
    tenant: Tenant,
    span: AlertSpan,
    fmt: Format,
    page: Page,
    state: StateQuery = None,
    sensor_id: AlertSensorQuery = None,
    rule: RuleQuery = None,
) -> Response:
    """Alert episodes, current (`state=open`) and past (`state=closed`), oldest first.

    An episode is one rule firing for one sensor's quantity: `started_at`, `ended_at`
    (null while open), the triggering `value` and a `message`. GeoJSON places each at its
    sensor's last known position.
    """
    asked = alerts_asked(
        state=state,
        sensor_id=sensor_id,
        rule=rule,
        quantity=quantity,
        tenant=tenant,
        span=span,
        page=page,
        api=ctx.api,
        now=ctx.now(),
    )
    rows, more = split_page(ctx.store.alerts(asked.filter), asked.size)
    link = None
    if more and rows:
        a = rows[-1]
        token = encode_keyset("alert", a.started_at, a.tenant, a.sensor_id, a.rule, a.quantity)
        link = next_url(request, token)
    places = places_of(ctx.recent_sensors(tenant)) if fmt == "geojson" else {}
    return render_page(
        request,
        fmt,
        rows,
        link,
        fields=ALERT_FIELDS,
        feature=lambda alert: alert_feature(alert, places),
        max_age=ctx.api.cache_max_age_s,
    )
