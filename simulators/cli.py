"""``urbanpulse simulate``: the command's options; the run itself is :mod:`simulators.session`.

Only typer and the standard library are imported here, so that ``urbanpulse --help`` does not
load the simulator; the command imports it when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# One alias per option keeps the command's signature a readable list (defaults stay there).
ScenarioOption = Annotated[
    str | None, typer.Option(help="scenario file, or a bundled one: town, city [default: town]")
]
ModeOption = Annotated[
    str,
    typer.Option(
        help="realtime (paced by the clock), accelerated (--speed x, event times real), "
        "backfill (history up to now, as fast as possible), load (--rate messages/s)"
    ),
]
DurationOption = Annotated[
    str | None,
    typer.Option(
        help="simulated time to cover, e.g. 90s, 10m, 1h, 2d [default: realtime for ever, "
        "accelerated and backfill 1d, load 60s]"
    ),
]
SpeedOption = Annotated[
    float, typer.Option(min=1.0, help="accelerated: simulated seconds per second")
]
HistoryOption = Annotated[
    str | None, typer.Option(help="realtime: first send this much history at once, e.g. 30m")
]
SeedOption = Annotated[int | None, typer.Option(help="random seed [default: the scenario's]")]
TenantOption = Annotated[str | None, typer.Option(help="tenant id [default: the scenario's]")]
FaultOption = Annotated[
    list[str] | None,
    typer.Option(
        help="a fault rate, NAME=RATE (probability per message), repeatable; NAME one of "
        "dropout, stuck, spike, drift, duplicate, out_of_order, late, clock_skew, "
        "malformed, low_battery"
    ),
]
FaultsOption = Annotated[
    bool, typer.Option(help="--no-faults sends clean data (overrides the scenario)")
]
RateOption = Annotated[float, typer.Option(min=0.001, help="load: target messages/s")]
ReadingsOption = Annotated[int, typer.Option(min=1, max=10_000, help="load: readings per message")]
MaxMessagesOption = Annotated[int | None, typer.Option(min=1, help="stop after this many messages")]
GroundTruthOption = Annotated[
    Path | None, typer.Option(help="ground-truth log of injected faults (JSON Lines)")
]
SendLogOption = Annotated[
    Path | None,
    typer.Option(
        help="per-message send timestamps (JSON Lines) [default: "
        ".local/simulate/send-log.jsonl in load mode, none otherwise]"
    ),
]
RegistryOutOption = Annotated[
    Path | None, typer.Option(help="write the fleet's sensor registry (YAML) here")
]
CredentialsDirOption = Annotated[
    Path | None,
    typer.Option(help="write per-device Mosquitto password/ACL files and secrets.csv here"),
]
TenantMapOutOption = Annotated[
    Path | None,
    typer.Option(help="write the network-server application → tenant map (JSON) here"),
]
SummaryOutOption = Annotated[Path | None, typer.Option(help="write the final summary (JSON) here")]
SetupOnlyOption = Annotated[
    bool, typer.Option(help="write registry, credentials and tenant map, send nothing")
]


def simulate(
    scenario: ScenarioOption = None,
    mode: ModeOption = "realtime",
    duration: DurationOption = None,
    speed: SpeedOption = 1440.0,
    history: HistoryOption = "30m",
    seed: SeedOption = None,
    tenant: TenantOption = None,
    fault: FaultOption = None,
    faults: FaultsOption = True,
    rate: RateOption = 500.0,
    readings_per_message: ReadingsOption = 10,
    max_messages: MaxMessagesOption = None,
    ground_truth: GroundTruthOption = Path(".local/simulate/ground-truth.jsonl"),
    send_log: SendLogOption = None,
    registry_out: RegistryOutOption = None,
    credentials_dir: CredentialsDirOption = None,
    tenant_map_out: TenantMapOutOption = None,
    summary_out: SummaryOutOption = None,
    setup_only: SetupOnlyOption = False,
) -> None:
    """Publish a simulated town over MQTT: every payload format, daily cycles, counted faults.

    With no options it runs the bundled town in real time (what `urbanpulse up` starts).
    Details: docs/simulators.md.
    """
    from simulators.options import SimulateOptions, mode_of
    from simulators.session import simulate as run

    try:
        checked_mode = mode_of(mode)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--mode") from None
    options = SimulateOptions(
        scenario=scenario,
        mode=checked_mode,
        duration=duration,
        speed=speed,
        history=history,
        seed=seed,
        tenant=tenant,
        fault=tuple(fault or ()),
        faults=faults,
        rate=rate,
        readings_per_message=readings_per_message,
        max_messages=max_messages,
        ground_truth=ground_truth,
        send_log=send_log,
        registry_out=registry_out,
        credentials_dir=credentials_dir,
        tenant_map_out=tenant_map_out,
        summary_out=summary_out,
        setup_only=setup_only,
    )
    run(options)
