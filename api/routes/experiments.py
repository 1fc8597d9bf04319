"""``GET /v1/experiments`` and ``GET /v1/experiments/{experiment_id}``: what a city's change did.

Experiments are defined in the registry file (docs/registry.md, "Experiments") or through
``/v1/admin/experiments``; the answer is computed from the stored hourly means of open sensors
(:mod:`api.experiment_result`), so it is open data like the aggregates it comes from.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from api.admin import Conflict, NotConfigured
from api.context import ApiContext, Context
from api.experiment_result import ExperimentAnswer, evaluate
from api.http import json_response
from api.openapi import PROBLEM
from api.registry_view import RegistrySnapshot
from api.routes.parameters import Tenant
from urbanpulse.experiment_registry import ExperimentDefinition
from urbanpulse.model import ID_PATTERN

router = APIRouter(tags=["experiments"])
ExperimentPath = Annotated[
    str, PathParam(pattern=ID_PATTERN, description="the experiment's id", examples=["school-st"])
]
RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"description": "the registry file is invalid", "content": PROBLEM},
}


class ExperimentList(BaseModel):
    """The experiments defined, as published (sensors the open API never names left out)."""

    data: list[dict[str, Any]] = Field(
        description="each definition (docs/registry.md) with a link to its answer"
    )


def published(
    experiment: ExperimentDefinition, hidden: frozenset[tuple[str, str]]
) -> dict[str, Any]:
    """The definition as the open API shows it: named sensors the registry classes
    ``restricted`` or ``personal`` are left out of its groups."""
    document = experiment.as_document()
    for name in ("treated", "control"):
        group = document.get(name)
        if group and "sensors" in group:
            group["sensors"] = [s for s in group["sensors"] if (experiment.tenant, s) not in hidden]
    return document


@router.get("/v1/experiments", response_model=ExperimentList, responses=RESPONSES)
def list_experiments(request: Request, ctx: Context, tenant: Tenant) -> Response:
    """The experiments the cities defined: what changed, where, when; `tenant` for one city's."""
    snapshot = registry_snapshot(ctx)
    hidden = snapshot.hidden()
    data = [
        published(e, hidden) | {"links": {"answer": f"/v1/experiments/{e.id}"}}
        for _, e in sorted(snapshot.experiments.items())
        if tenant in (None, e.tenant)
    ]
    return json_response(
        request, {"data": data}, media_type="application/json", max_age=ctx.api.cache_max_age_s
    )


@router.get(
    "/v1/experiments/{experiment_id}",
    response_model=ExperimentAnswer,
    responses=RESPONSES | {404: {"description": "no such experiment", "content": PROBLEM}},
)
def experiment(request: Request, ctx: Context, experiment_id: ExperimentPath) -> Response:
    """The difference in means with its confidence interval (the method named), and per side
    the hourly means, readings and completeness behind it, from the hourly aggregates."""
    answer = answer_for(ctx, experiment_id)
    return json_response(
        request,
        answer.model_dump(mode="json"),
        media_type="application/json",
        max_age=ctx.api.cache_max_age_s,
    )


def answer_for(ctx: ApiContext, experiment_id: str) -> ExperimentAnswer:
    """One experiment's answer now; a 404 problem for an unknown id."""
    snapshot = registry_snapshot(ctx)
    found = snapshot.experiments.get(experiment_id)
    if found is None:
        raise HTTPException(404, f"no experiment {experiment_id!r} is defined")
    return evaluate(
        found,
        snapshot.sensors,
        ctx.store,
        now=ctx.now(),
        default_interval_s=ctx.settings.streams.expected_interval_s,
    )


def registry_snapshot(ctx: ApiContext) -> RegistrySnapshot:
    """The registry's sensors and experiments now; its problems become 409 and 503 problems."""
    try:
        return ctx.registry_view.snapshot()
    except Conflict as err:
        raise HTTPException(409, str(err)) from None
    except NotConfigured as err:
        raise HTTPException(503, str(err)) from None
