"""Interventions: a change the city makes, applied to the true values of a treated group (pure).

A scenario's ``interventions`` (docs/simulators.md) become :class:`InterventionPlan` with the
devices and platform sensor ids of the treated and the control group. The fault injector
shifts the treated devices' values of the quantity while the intervention is in force, before
any fault touches them (the change is real: the sensors measure it), and writes one
ground-truth line when it comes into force.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from simulators.models import clamp_round, quantity_model
from simulators.scenario import Device, Intervention, Scenario, kind_quantities, onset_moment


@dataclass(frozen=True, kw_only=True)
class InterventionPlan:
    """One intervention with its groups resolved to devices and platform sensor ids."""

    name: str
    quantity: str
    change: float
    start: float | datetime  # a duration after the run's first report, or a time
    until: float | datetime | None
    treated: frozenset[str]  # device ids
    control: frozenset[str]
    treated_sensors: tuple[str, ...]
    control_sensors: tuple[str, ...]

    def in_force(self, t: datetime, run_start: datetime) -> bool:
        """Whether the intervention applies at ``t``."""
        if t < onset_moment(self.start, run_start):
            return False
        return self.until is None or t < onset_moment(self.until, run_start)


def _group(
    fleet: Sequence[Device], quantity: str, district: str | None, devices: Iterable[str]
) -> list[Device]:
    named = set(devices)
    return [
        d
        for d in fleet
        if quantity in kind_quantities(d.kind)
        and (d.district == district if district is not None else d.device_id in named)
    ]


def plan(intervention: Intervention, fleet: Sequence[Device]) -> InterventionPlan:
    """Resolve an intervention's treated and control groups in the fleet."""
    q = intervention.quantity
    treated = _group(fleet, q, intervention.district, intervention.devices)
    if intervention.control_district is not None or intervention.control:
        control = _group(fleet, q, intervention.control_district, intervention.control)
    else:
        taken = {d.device_id for d in treated}
        control = [d for d in fleet if q in kind_quantities(d.kind) and d.device_id not in taken]
    overlap = {d.device_id for d in treated} & {d.device_id for d in control}
    if not treated or overlap:
        why = "treats no device" if not treated else f"has {sorted(overlap)} in both groups"
        raise ValueError(f"intervention {intervention.name} {why}")
    return InterventionPlan(
        name=intervention.name,
        quantity=q,
        change=intervention.change,
        start=intervention.start,
        until=intervention.until,
        treated=frozenset(d.device_id for d in treated),
        control=frozenset(d.device_id for d in control),
        treated_sensors=tuple(d.sensor_id for d in treated),
        control_sensors=tuple(d.sensor_id for d in control),
    )


def plan_all(scenario: Scenario, fleet: Sequence[Device]) -> tuple[InterventionPlan, ...]:
    """Every intervention of the scenario, resolved in its fleet."""
    return tuple(plan(i, fleet) for i in scenario.interventions)


def apply(
    plans: Iterable[InterventionPlan],
    device: Device,
    t: datetime,
    values: Mapping[str, float],
    run_start: datetime,
) -> dict[str, float]:
    """The device's values at ``t`` with every intervention in force on it applied."""
    out = dict(values)
    for p in plans:
        if device.device_id in p.treated and p.quantity in out and p.in_force(t, run_start):
            model = quantity_model(device.kind, p.quantity)
            out[p.quantity] = clamp_round(model, out[p.quantity] + p.change)
    return out
