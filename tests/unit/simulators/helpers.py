"""Shared pieces of the simulator tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.routing import Decoded, RoutingConfig, decode_message
from simulators.engine import fleet_stream
from simulators.faults import FaultInjector, Outgoing
from simulators.formats import Message, Wire
from simulators.interventions import plan_all
from simulators.scenario import FAULTS, Scenario, build_fleet, load_scenario, scenario_path

START = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # a Monday


def town(**faults: float) -> Scenario:
    """The default town with only the given fault rates, and without its incidents."""
    scenario = load_scenario(scenario_path("town"))
    rates = dict.fromkeys(FAULTS, 0.0) | faults
    return scenario.model_validate(scenario.model_dump() | {"faults": rates, "incidents": {}})


def run(
    scenario: Scenario, hours: float = 6, *, timestamps: bool = True, start: datetime = START
) -> list[Outgoing]:
    fleet = build_fleet(scenario)
    injector = FaultInjector(
        scenario.city(),
        Wire.of(scenario, timestamps=timestamps),
        scenario.faults,
        interventions=plan_all(scenario, fleet),
        run_start=start,
    )
    return list(fleet_stream(fleet, injector, start, start + timedelta(hours=hours)))


def decode(scenario: Scenario, message: Message, received_at: datetime | None = None) -> Decoded:
    config = RoutingConfig(tenant_by_application=scenario.tenant_by_application())
    return decode_message(
        message.topic, message.payload, received_at or message.observed_at, 262_144, config=config
    )
