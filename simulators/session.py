"""One ``urbanpulse simulate`` run, step by step: scenario, set-up files, stream, summary.

:func:`simulate` reads like the run: load and override the scenario, write the set-up files
and announce the tenant map, build the stream for the mode, publish it, and summarise. The
decisions are pure functions in :mod:`simulators.options` and :mod:`simulators.runs`; this
module only does them in order and logs.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import typer

from simulators.options import SimulateOptions, Spans, override_scenario, spans_of
from simulators.outputs import tenant_map, unmapped_applications, write_setup
from simulators.publisher import RunSummary
from simulators.runs import (
    expectations_of,
    fleet_counts,
    publish_run,
    stream_for_mode,
    summary_document,
)
from simulators.scenario import Device, Scenario, build_fleet, load_scenario, scenario_path
from urbanpulse.settings import Settings
from urbanpulse.startup import start_component

log = logging.getLogger("urbanpulse")


def simulate(options: SimulateOptions) -> None:
    """Set up the simulated town's files, then publish it as the options ask."""
    settings = start_component("simulate")
    town, spans = load_town(options)
    fleet = build_fleet(town)
    mapping = tenant_map(town, fleet)
    for path in write_setup(
        town, fleet, options.registry_out, options.credentials_dir, options.tenant_map_out
    ):
        log.info("wrote %s", path)
    announce_tenant_map(town, mapping, settings)
    if options.setup_only:
        return
    now = datetime.now(UTC).replace(microsecond=0)
    expectations = expectations_of(settings.streams)
    run = stream_for_mode(town, fleet, options, spans=spans, now=now, expectations=expectations)
    announce_run(town, fleet, options, settings)
    summary = publish_run(
        settings.mqtt,
        run,
        client_id=f"urbanpulse-sim-{town.tenant}-{options.mode}",
        ground_truth=options.ground_truth,
    )
    report(summary, town=town, options=options, mapping=mapping)


def load_town(options: SimulateOptions) -> tuple[Scenario, Spans]:
    """The scenario with the options' overrides, and the run's spans; bad options: exit 2."""
    try:
        town = override_scenario(load_scenario(scenario_path(options.scenario)), options)
        return town, spans_of(options.mode, options.duration, options.history)
    except (OSError, ValueError) as err:  # pydantic's ValidationError is a ValueError
        raise typer.BadParameter(str(err)) from None


def announce_tenant_map(town: Scenario, mapping: dict[str, str], settings: Settings) -> None:
    """Log the application → tenant map the ingestor needs, and warn if this one lacks it."""
    if not mapping:
        return
    log.info(
        "network-server applications of %r: the ingestor needs "
        "URBANPULSE_DECODERS__TENANT_BY_APPLICATION='%s'",
        town.name,
        json.dumps(mapping),
    )
    missing = unmapped_applications(mapping, settings.decoders.tenant_by_application)
    if missing:
        log.warning(
            "this environment does not map %s to tenant %r: unless the ingestor's does, "
            "their readings land in tenant %r",
            ", ".join(missing),
            town.tenant,
            settings.default_tenant,
        )


def announce_run(
    town: Scenario, fleet: list[Device], options: SimulateOptions, settings: Settings
) -> None:
    """Log what is about to be sent, and where to."""
    log.info(
        "simulating %r (tenant %r, seed %d): %d sensors (%s), mode %s, to %s:%d",
        town.name,
        town.tenant,
        town.seed,
        len(fleet),
        fleet_counts(fleet),
        options.mode,
        settings.mqtt.host,
        settings.mqtt.port,
    )


def report(
    summary: RunSummary, *, town: Scenario, options: SimulateOptions, mapping: dict[str, str]
) -> None:
    """Log what was sent, and write the ``--summary-out`` file if asked."""
    log.info("done: %s", summary.line())
    if options.ground_truth:
        log.info("ground truth of the injected faults: %s", options.ground_truth)
    if options.summary_out is not None:
        body = summary_document(summary, mode=options.mode, tenant=town.tenant, tenant_map=mapping)
        options.summary_out.parent.mkdir(parents=True, exist_ok=True)
        options.summary_out.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
