"""The staff overview's scorecard: the tenant's score, its components, the weakest sensors.

Read from the stored ``kpi`` points (the indicator job's, docs/kpis.md): the most recent day
of the last :data:`LOOKBACK` with a tenant point — the last complete one when there is one,
so the morning page shows yesterday rather than the first hours of today — and that day's
sensor indicators, ranked by :func:`urbanpulse.scorecard.rank_sensors`. Sensors the registry
does not publish are left out, as everywhere on the open pages.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from api.admin import Conflict, NotConfigured
from api.context import ApiContext
from api.formats import rfc3339
from api.kpi_filters import KpiFilter
from api.store import Store
from urbanpulse.kpi import Indicators
from urbanpulse.scorecard import COMPONENTS, rank_sensors
from urbanpulse.settings import ScoreWeights

LOOKBACK = timedelta(days=8)
WORST = 5


def pick_day(days: Iterable[Indicators]) -> Indicators | None:
    """The tenant's day to show: the latest complete one, else the latest (pure)."""
    ordered = sorted(days, key=lambda i: i.start)
    complete = [i for i in ordered if i.complete]
    chosen = complete or ordered
    return chosen[-1] if chosen else None


def scorecard_document(
    tenant_day: Indicators,
    sensors: Iterable[Indicators],
    weights: ScoreWeights,
    hidden: frozenset[tuple[str, str]] | None = frozenset(),
) -> dict[str, Any]:
    """What the page shows of one day (pure): score, components with weights, worst sensors.

    ``hidden``: sensors not to name; None when that cannot be known (an invalid registry),
    and then no sensor is named.
    """
    shown = [s for s in sensors if hidden is not None and (s.tenant, s.subject) not in hidden]
    weight = weights.model_dump()
    total = sum(weight[name] for name in tenant_day.components) or 1.0
    return {
        "day": tenant_day.start.date().isoformat(),
        "start": rfc3339(tenant_day.start),
        "complete": tenant_day.complete,
        "score": tenant_day.score,
        "sensors": tenant_day.sensors,
        "reporting": tenant_day.sensors_reporting,
        "components": [
            {
                "name": name,
                "value": tenant_day.components[name],
                "weight": weight[name] / total,
            }
            for name in COMPONENTS
            if name in tenant_day.components
        ],
        "worst": [
            {
                "rank": r.rank,
                "sensor_id": r.sensor_id,
                "score": r.score,
                "completeness": r.indicators.completeness,
                "weakest": r.weakest,
            }
            for r in rank_sensors(shown, limit=WORST)
        ],
    }


def load_scorecard(
    store: Store,
    *,
    tenant: str,
    now: datetime,
    weights: ScoreWeights,
    hidden: frozenset[tuple[str, str]] | None,
) -> dict[str, Any] | None:
    """The scorecard of the tenant's latest stored day; None when the job stored none lately."""
    days = _documents(
        store,
        KpiFilter(
            start=now - LOOKBACK,
            stop=now,
            scope="tenant",
            tenant=tenant,
            document="indicators",
        ),
    )
    chosen = pick_day(days)
    if chosen is None:
        return None
    sensors = _documents(
        store,
        KpiFilter(
            start=chosen.start,
            stop=chosen.start + timedelta(seconds=1),
            scope="sensor",
            tenant=tenant,
            document="indicators",
        ),
    )
    return scorecard_document(chosen, sensors, weights, hidden)


def _documents(store: Store, flt: KpiFilter) -> list[Indicators]:
    return [Indicators.from_json(row.document) for row in store.kpis(flt)]


def hidden_sensors(ctx: ApiContext) -> frozenset[tuple[str, str]] | None:
    """The sensors the open pages must not name; None when the registry cannot say."""
    try:
        return ctx.registry_view.snapshot().hidden()
    except (Conflict, NotConfigured):
        return None
