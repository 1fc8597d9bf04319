"""The experiments page (``/experiments``): each experiment of the town, its effect, interval
and the data behind it, in words a council reads.

The numbers are ``/v1/experiments/{id}``'s (:func:`api.experiment_result.evaluate`); the page
adds the words: the design, the method, the verdict and, per side, how many readings stand
behind it against those expected.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from api.admin import Conflict, NotConfigured
from api.context import ApiContext, Context
from api.experiment_result import ExperimentAnswer, evaluate
from api.web.pages import LangParam, Pages, TenantParam
from urbanpulse.display import display

log = logging.getLogger(__name__)


def experiments_router(pages: Pages) -> APIRouter:
    """``/experiments``: the town's experiments as a page."""
    router = APIRouter(include_in_schema=False)

    @router.get("/experiments", response_class=HTMLResponse)
    def experiments_page(
        request: Request, ctx: Context, tenant: TenantParam = None, lang: LangParam = None
    ) -> Response:
        """Every experiment of the tenant: effect, interval, verdict and data behind it."""
        who = pages.tenant(tenant)
        shown, problem = town_experiments(ctx, who)
        return pages.render(
            request,
            "experiments.html",
            lang_query=lang,
            tenant=who,
            page="experiments",
            experiments=[experiment_view(answer) for answer in shown],
            problem=problem,
        )

    return router


def town_experiments(ctx: ApiContext, tenant: str) -> tuple[list[ExperimentAnswer], str | None]:
    """The tenant's experiments answered now, and what went wrong reading the registry."""
    try:
        snapshot = ctx.registry_view.snapshot()
    except (Conflict, NotConfigured) as err:
        log.warning("experiments page: %s", err)
        return [], str(err)
    answers = [
        evaluate(
            experiment,
            snapshot.sensors,
            ctx.store,
            now=ctx.now(),
            default_interval_s=ctx.settings.streams.expected_interval_s,
        )
        for _, experiment in sorted(snapshot.experiments.items())
        if experiment.tenant == tenant
    ]
    return answers, None


def experiment_view(answer: ExperimentAnswer) -> dict[str, Any]:
    """What the page shows of one answer (pure): numbers rounded for reading, keys for words."""
    shown = display(answer.quantity)
    digits = max(2, shown.decimals)

    def number(value: float | None) -> str | None:
        return None if value is None else f"{value:+.{digits}f}"

    return {
        "id": answer.id,
        "name": answer.name,
        "description": answer.description,
        "quantity": answer.quantity,
        "unit": shown.unit_label or answer.unit,
        "design": answer.design,
        "method": answer.method,
        "confidence": round(answer.confidence * 100),
        "estimate": number(answer.estimate),
        "low": number(answer.low),
        "high": number(answer.high),
        "verdict": answer.verdict,
        "treated": answer.treated,
        "control": answer.control,
        "sides": [
            {
                "key": side.name.replace(" ", "_"),
                "start": side.start,
                "end": side.end,
                "sensors": side.sensors,
                "readings": side.readings,
                "expected": side.expected,
                "completeness": None
                if side.completeness is None
                else round(side.completeness * 100),
                "mean": None if side.mean is None else f"{side.mean:.{digits}f}",
            }
            for side in answer.sides
        ],
    }
