"""An experiment's answer, from its definition, the registry and the stored hourly means.

The statistics are pure (:func:`urbanpulse.experiments.compare`); this module only gathers
their inputs — which sensors make each group (:mod:`urbanpulse.experiment_registry`), their
reporting intervals, and one store read of their hourly means (``aggregate``, window ``1h``)
over the experiment's periods — and shapes the answer ``/v1/experiments/{id}``, the
experiments page and the monthly report publish.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.formats import rfc3339
from api.kpi_filters import HourlyFilter
from api.store import Store
from urbanpulse.experiment_registry import (
    ExperimentDefinition,
    Group,
    candidates,
    group_members,
    intervals_of,
    side_plans,
)
from urbanpulse.experiments import (
    MIN_COMPLETENESS,
    ExperimentDesign,
    HourlyMean,
    Outcome,
    Verdict,
    compare,
)
from urbanpulse.quantities import QUANTITIES
from urbanpulse.registry import Registry


class SideAnswer(BaseModel):
    """One side of the comparison and the data behind it."""

    name: str = Field(description="treated before, treated after, control, ...")
    start: str = Field(description="RFC 3339: first hour of the side")
    end: str = Field(description="RFC 3339: end of the side (exclusive; now if still open)")
    sensors: int = Field(description="sensors in the group")
    values: int = Field(description="hourly means compared (one per sensor and hour with data)")
    readings: int = Field(description="raw readings behind those means")
    expected: int = Field(description="readings the sensors' reporting intervals expected")
    completeness: float | None = Field(description="readings / expected")
    mean: float | None = Field(description="mean of the hourly means")
    sd: float | None = Field(description="their standard deviation")


class GroupAnswer(BaseModel):
    """A group as defined, and the sensors it stands for now."""

    district: str | None
    sensors: list[str] = Field(description="the published sensors the comparison used")


class ExperimentAnswer(BaseModel):
    """What a city's change did: the effect with its interval, and whether the data carry it."""

    id: str
    name: str
    description: str | None
    tenant: str
    quantity: str
    unit: str = Field(description="UCUM unit of the quantity and of the effect")
    design: ExperimentDesign
    method: Literal["welch", "bootstrap"] = Field(
        description="welch: Welch's t interval; bootstrap: percentile bootstrap (docs/kpis.md)"
    )
    confidence: float
    estimate: float | None = Field(description="the difference in means (null: too few data)")
    low: float | None = Field(description="lower end of the confidence interval")
    high: float | None = Field(description="upper end of the confidence interval")
    df: float | None = Field(description="Welch's degrees of freedom")
    verdict: Verdict = Field(
        description="effect (the interval excludes 0), no_effect (it holds 0), incomplete "
        f"(a side has less than {MIN_COMPLETENESS:.0%} of its expected readings), "
        "insufficient (a side has fewer than two hourly means)"
    )
    treated: GroupAnswer
    control: GroupAnswer | None
    sides: list[SideAnswer]
    computed_at: str


def evaluate(
    experiment: ExperimentDefinition,
    registry: Registry,
    store: Store,
    *,
    now: datetime,
    default_interval_s: float,
) -> ExperimentAnswer:
    """Ask the store for the hourly means the experiment needs and compare its sides."""
    wanted = candidates(experiment, registry)
    spans = experiment.spans()
    start, stop = spans[0].start, max(s.until(now) for s in spans)
    hours: list[HourlyMean] = []
    if wanted and stop > start:
        hours = store.hourly_means(
            HourlyFilter(
                start=start,
                stop=stop,
                tenant=experiment.tenant,
                quantity=experiment.quantity,
                sensors=tuple(sorted(wanted)),
            )
        )
    reporting = {h.sensor_id for h in hours}
    treated = group_members(experiment.treated, experiment.tenant, registry, reporting)
    control = (
        group_members(experiment.control, experiment.tenant, registry, reporting)
        if experiment.control is not None
        else frozenset[str]()
    )
    plans = side_plans(experiment, treated, control, now)
    intervals = intervals_of(treated | control, experiment.tenant, registry, default_interval_s)
    outcome = compare(
        experiment.design,
        plans,
        hours,
        intervals,
        method=experiment.method,
        confidence=experiment.confidence,
    )
    return answer_of(experiment, outcome, treated=treated, control=control, now=now)


def answer_of(
    experiment: ExperimentDefinition,
    outcome: Outcome,
    *,
    treated: frozenset[str],
    control: frozenset[str],
    now: datetime,
) -> ExperimentAnswer:
    """The published answer of an outcome (pure)."""
    effect = outcome.effect

    def group(defined: Group, members: frozenset[str]) -> GroupAnswer:
        return GroupAnswer(district=defined.district, sensors=sorted(members))

    return ExperimentAnswer(
        id=experiment.id,
        name=experiment.name,
        description=experiment.description,
        tenant=experiment.tenant,
        quantity=experiment.quantity,
        unit=QUANTITIES[experiment.quantity].unit,
        design=experiment.design,
        method=experiment.method,
        confidence=experiment.confidence,
        estimate=effect.estimate if effect else None,
        low=effect.low if effect else None,
        high=effect.high if effect else None,
        df=effect.df if effect and effect.df is not None and effect.df != float("inf") else None,
        verdict=outcome.verdict,
        treated=group(experiment.treated, treated),
        control=group(experiment.control, control) if experiment.control else None,
        sides=[
            SideAnswer(
                name=s.name,
                start=rfc3339(s.start),
                end=rfc3339(s.end),
                sensors=s.sensors,
                values=s.values,
                readings=s.readings,
                expected=s.expected,
                completeness=s.completeness,
                mean=s.mean,
                sd=s.sd,
            )
            for s in outcome.sides
        ],
        computed_at=rfc3339(now),
    )
