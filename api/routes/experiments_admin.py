"""``/v1/admin/experiments``: define, change and remove experiments, behind an admin API key.

Experiments live in the YAML registry file beside the sensors (docs/registry.md); every change
rewrites that file atomically under the sensor administration's lock
(:meth:`api.registry_view.RegistryView.update_experiments`). Same key, answers and problems
as ``/v1/admin/sensors`` (:mod:`api.routes.admin`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Response
from fastapi import Path as PathParam
from pydantic import BaseModel

from api.admin import Conflict, Unknown
from api.context import Context
from api.openapi import PROBLEM
from api.routes.admin import RESPONSES, administrator, run_registry_action
from urbanpulse.experiment_registry import ExperimentDefinition, Experiments
from urbanpulse.model import ID_PATTERN

ExperimentPath = Annotated[str, PathParam(pattern=ID_PATTERN, examples=["school-street"])]
EXAMPLE = {
    "id": "school-street",
    "name": "School street Wilhelminastraat",
    "tenant": "utrecht",
    "quantity": "noise_level",
    "treated": {"district": "centrum"},
    "control": {"district": "oost"},
    "before": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
    "after": {"from": "2026-11-01T00:00:00Z"},
}
CONFLICT = {"description": "the id is taken, or the registry is invalid or CSV", "content": PROBLEM}
INVALID = {"description": "the body is not a valid experiment", "content": PROBLEM}
MISSING = {"description": "no such experiment", "content": PROBLEM}

router = APIRouter(
    prefix="/v1/admin/experiments",
    tags=["admin"],
    dependencies=[Depends(administrator)],
    responses=RESPONSES,
)


class ExperimentDefinitions(BaseModel):
    """Every experiment of the registry file, by id."""

    data: list[ExperimentDefinition]


Definition = Annotated[
    ExperimentDefinition, Body(openapi_examples={"a school street": {"value": EXAMPLE}})
]


@router.get("", response_model=ExperimentDefinitions, response_model_by_alias=True)
def list_definitions(ctx: Context) -> ExperimentDefinitions:
    """Every experiment defined in the registry file, as written there."""
    experiments = run_registry_action(lambda: ctx.registry_view.snapshot().experiments)
    return ExperimentDefinitions(data=[experiments[key] for key in sorted(experiments)])


@router.get(
    "/{experiment_id}",
    response_model=ExperimentDefinition,
    response_model_by_alias=True,
    responses={404: MISSING},
)
def get_definition(ctx: Context, experiment_id: ExperimentPath) -> ExperimentDefinition:
    """One experiment's definition."""
    return run_registry_action(
        lambda: _existing(ctx.registry_view.snapshot().experiments, experiment_id)
    )


@router.post(
    "",
    status_code=201,
    response_model=ExperimentDefinition,
    response_model_by_alias=True,
    responses={409: CONFLICT, 422: INVALID},
)
def add_definition(
    ctx: Context, response: Response, definition: Definition
) -> ExperimentDefinition:
    """Define an experiment; `/v1/experiments/{id}` answers it at once."""

    def add(experiments: Experiments) -> Experiments:
        if definition.id in experiments:
            raise Conflict(f"an experiment {definition.id!r} is defined already")
        return experiments | {definition.id: definition}

    run_registry_action(lambda: ctx.registry_view.update_experiments(add))
    response.headers["Location"] = f"/v1/admin/experiments/{definition.id}"
    return definition


@router.put(
    "/{experiment_id}",
    response_model=ExperimentDefinition,
    response_model_by_alias=True,
    responses={404: MISSING, 409: CONFLICT, 422: INVALID},
)
def replace_definition(
    ctx: Context, experiment_id: ExperimentPath, definition: Definition
) -> ExperimentDefinition:
    """Replace an experiment's whole definition (its `id` may not change)."""
    if definition.id != experiment_id:
        raise HTTPException(422, f"the body's id {definition.id!r} is not {experiment_id!r}")

    def replace(experiments: Experiments) -> Experiments:
        _existing(experiments, experiment_id)
        return experiments | {experiment_id: definition}

    run_registry_action(lambda: ctx.registry_view.update_experiments(replace))
    return definition


@router.delete("/{experiment_id}", status_code=204, responses={404: MISSING, 409: CONFLICT})
def remove_definition(ctx: Context, experiment_id: ExperimentPath) -> Response:
    """Remove an experiment from the registry file (its data stay: they are readings)."""

    def remove(experiments: Experiments) -> Experiments:
        _existing(experiments, experiment_id)
        return {k: v for k, v in experiments.items() if k != experiment_id}

    run_registry_action(lambda: ctx.registry_view.update_experiments(remove))
    return Response(status_code=204)


def _existing(experiments: Experiments, experiment_id: str) -> ExperimentDefinition:
    if experiment_id not in experiments:
        raise Unknown(f"no experiment {experiment_id!r} is defined")
    return experiments[experiment_id]
