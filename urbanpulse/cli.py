"""The ``urbanpulse`` command: one entry point for every component of the platform."""

from __future__ import annotations

import logging
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from dashboards.cli import app as dashboards_app
from urbanpulse.logs import configure
from urbanpulse.service_cli import app as service_app
from urbanpulse.settings import Settings

app = typer.Typer(
    help="UrbanPulse: an open-data IoT platform for city sensor pilots. "
    "Settings come from URBANPULSE_* environment variables (see README, 'Configuration').",
    no_args_is_help=True,
    add_completion=False,
)
log = logging.getLogger("urbanpulse")
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(service_app, name="service")


def _settings(component: str) -> Settings:
    settings = Settings()
    configure(settings.log_level, component, settings.log_format)
    return settings


@app.command()
def up(
    simulate: Annotated[bool, typer.Option(help="also run the bundled simulator")] = True,
    watch_service: Annotated[
        list[str] | None,
        typer.Option(
            help="a local service started by deploy/local/services.sh to watch and restart "
            "(mosquitto, kafka, influxdb, prometheus); repeatable. `make up` names those it "
            "started"
        ),
    ] = None,
) -> None:
    """Run ingest, worker, API and a simulator together, keep them up, one log stream.

    A component that stops is restarted after a back-off (1 s, doubling up to 60 s); one that
    keeps stopping is reported as crash-looping while the others go on. The status of every
    component is in .local/run/supervisor.json (URBANPULSE_SUPERVISOR__RUN_DIR), its metrics
    on port 9103. The URLs are printed once the API answers. Expects the local services to be
    running (``make up`` starts them first). Stops every component on Ctrl-C or SIGTERM.
    """
    from urbanpulse.supervisor import run_platform

    raise typer.Exit(run_platform(_settings("up"), simulate, watch_service or []))


@app.command()
def ingest() -> None:
    """Move MQTT messages to Kafka: decode, dead-letter the bad ones, ack only after Kafka."""
    from ingest.mqtt_ingestor import run

    raise typer.Exit(run(_settings("ingest")))


@app.command()
def worker() -> None:
    """Run the Faust stream worker that stores readings from Kafka in InfluxDB."""
    from streams.app import run

    raise typer.Exit(run(_settings("worker")))


@app.command("influx-setup")
def influx_setup() -> None:
    """Create the InfluxDB 2.x buckets, or set their retention (1.8: nothing to do).

    Idempotent, never deletes; the worker does the same at every start. For a one-shot job.
    """
    from urbanpulse.influx_setup import ensure_buckets, is_v1

    settings = _settings("influx-setup")
    if is_v1(settings.influx):
        log.info("InfluxDB 1.8 (org '-'): nothing to set up here")
        return
    ensure_buckets(settings.influx)  # logs each change


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="bind address [default: from settings]")] = None,
    port: Annotated[int | None, typer.Option(help="port [default: from settings]")] = None,
) -> None:
    """Serve the open-data API (OpenAPI docs at /docs)."""
    import uvicorn

    from api.app import create_app

    settings = _settings("api")
    uvicorn.run(
        create_app(settings),
        host=host or settings.api.host,
        port=port or settings.api.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep the process's logging (urbanpulse.logs: text or JSON)
    )


@app.command()
def credentials(
    registry: Annotated[
        Path, typer.Option(help="sensor registry (.yaml or .csv, docs/registry.md)")
    ],
    out: Annotated[Path, typer.Option(help="folder for passwords, acl and secrets.csv")],
) -> None:
    """Write Mosquitto password and ACL files from the sensor registry.

    Each registered sensor may publish only on its own topics; re-running keeps the passwords
    of known devices (read back from secrets.csv, which stays private: mode 0600).
    """
    from ingest.credentials import credential_files
    from streams.registry import kind_of, parse_registry

    _settings("credentials")
    sensors = parse_registry(registry.read_text(), kind_of(registry))
    secrets = out / "secrets.csv"
    files = credential_files(sensors, secrets.read_text() if secrets.exists() else "")
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = out / name
        path.touch(mode=0o600 if name == "secrets.csv" else 0o644)  # hashes only elsewhere
        path.write_text(text)
    log.info("wrote %s for %d sensors (keep secrets.csv private)", ", ".join(files), len(sensors))


@app.command()
def simulate(
    scenario: Annotated[
        str | None,
        typer.Option(help="scenario file, or a bundled one: town, city [default: town]"),
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            help="realtime (paced by the clock), accelerated (--speed x, event times real), "
            "backfill (history up to now, as fast as possible), load (--rate messages/s)"
        ),
    ] = "realtime",
    duration: Annotated[
        str | None,
        typer.Option(
            help="simulated time to cover, e.g. 90s, 10m, 1h, 2d [default: realtime for ever, "
            "accelerated and backfill 1d, load 60s]"
        ),
    ] = None,
    speed: Annotated[
        float, typer.Option(min=1.0, help="accelerated: simulated seconds per second")
    ] = 1440.0,
    history: Annotated[
        str | None,
        typer.Option(help="realtime: first send this much history at once, e.g. 30m"),
    ] = "30m",
    seed: Annotated[int | None, typer.Option(help="random seed [default: the scenario's]")] = None,
    tenant: Annotated[str | None, typer.Option(help="tenant id [default: the scenario's]")] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="a fault rate, NAME=RATE (probability per message), repeatable; NAME one of "
            "dropout, stuck, spike, drift, duplicate, out_of_order, late, clock_skew, "
            "malformed, low_battery"
        ),
    ] = None,
    faults: Annotated[
        bool, typer.Option(help="--no-faults sends clean data (overrides the scenario)")
    ] = True,
    rate: Annotated[float, typer.Option(min=0.001, help="load: target messages/s")] = 500.0,
    readings_per_message: Annotated[
        int, typer.Option(min=1, max=10_000, help="load: readings per message")
    ] = 10,
    max_messages: Annotated[
        int | None, typer.Option(min=1, help="stop after this many messages")
    ] = None,
    ground_truth: Annotated[
        Path | None,
        typer.Option(help="ground-truth log of injected faults (JSON Lines)"),
    ] = Path(".local/simulate/ground-truth.jsonl"),
    send_log: Annotated[
        Path | None,
        typer.Option(
            help="per-message send timestamps (JSON Lines) [default: "
            ".local/simulate/send-log.jsonl in load mode, none otherwise]"
        ),
    ] = None,
    registry_out: Annotated[
        Path | None, typer.Option(help="write the fleet's sensor registry (YAML) here")
    ] = None,
    credentials_dir: Annotated[
        Path | None,
        typer.Option(help="write per-device Mosquitto password/ACL files and secrets.csv here"),
    ] = None,
    tenant_map_out: Annotated[
        Path | None,
        typer.Option(help="write the network-server application → tenant map (JSON) here"),
    ] = None,
    summary_out: Annotated[
        Path | None, typer.Option(help="write the final summary (JSON) here")
    ] = None,
    setup_only: Annotated[
        bool, typer.Option(help="write registry, credentials and tenant map, send nothing")
    ] = False,
) -> None:
    """Publish a simulated town over MQTT: every payload format, daily cycles, counted faults.

    With no options it runs the bundled town in real time (what `urbanpulse up` starts).
    Details: docs/simulators.md.
    """
    import json
    from dataclasses import replace

    from simulators.engine import MODES, fleet_stream, load_stream, plan
    from simulators.faults import Expectations, FaultInjector
    from simulators.formats import Wire
    from simulators.outputs import tenant_map, write_setup
    from simulators.publisher import Pacer, connect, run_stream
    from simulators.scenario import (
        FAULTS,
        build_fleet,
        load_scenario,
        parse_duration,
        scenario_path,
    )

    settings = _settings("simulate")
    if mode not in MODES:
        raise typer.BadParameter(f"one of {', '.join(MODES)}", param_hint="--mode")
    try:
        town = load_scenario(scenario_path(scenario))
        update: dict[str, object] = {}
        if seed is not None:
            update["seed"] = seed
        if tenant is not None:
            update["tenant"] = tenant
            update["network_servers"] = town.network_servers.model_copy(
                update={"tts_application": None, "chirpstack_application": None}
            )
        rates = town.faults.model_dump() if faults else dict.fromkeys(FAULTS, 0.0)
        for item in fault or []:
            name, _, value = item.partition("=")
            if name not in FAULTS or not value:
                raise ValueError(f"--fault {item!r}: NAME=RATE with NAME one of {FAULTS}")
            rates[name] = float(value)
        update["faults"] = town.faults.model_validate(rates)
        town = town.model_validate(town.model_dump() | update)
        default_s = {"realtime": None, "accelerated": 86400.0, "backfill": 86400.0}
        span = parse_duration(duration) if duration else default_s.get(mode, 60.0)
        back = parse_duration(history) if history and mode == "realtime" else 0.0
    except (OSError, ValueError) as err:
        raise typer.BadParameter(str(err)) from None

    fleet = build_fleet(town)
    mapping = tenant_map(town, fleet)
    written = write_setup(town, fleet, registry_out, credentials_dir, tenant_map_out)
    for path in written:
        log.info("wrote %s", path)
    if mapping:
        log.info(
            "network-server applications of %r: the ingestor needs "
            "URBANPULSE_DECODERS__TENANT_BY_APPLICATION='%s'",
            town.name,
            json.dumps(mapping),
        )
        missing = {
            k: v for k, v in mapping.items() if settings.decoders.tenant_by_application.get(k) != v
        }
        if missing:
            log.warning(
                "this environment does not map %s to tenant %r: unless the ingestor's does, "
                "their readings land in tenant %r",
                ", ".join(sorted(missing)),
                town.tenant,
                settings.default_tenant,
            )
    if setup_only:
        return

    now = datetime.now(UTC).replace(microsecond=0)
    streams = settings.streams
    expectations = Expectations(
        stuck_count=streams.stuck_count,
        gap_factor=streams.gap_factor,
        max_future_s=streams.max_future_s,
        max_age_s=streams.max_age_s,
        allowed_lateness_s=streams.allowed_lateness_s,
    )
    wire = Wire.of(town, timestamps=mode != "realtime")
    limit: int | None
    if mode == "load":
        stream = load_stream(fleet, town.city(), wire, readings_per_message, now, rate)
        pacer = Pacer(now, 1.0)
        limit = max_messages or max(1, round(rate * (span or 60.0)))
        send_log = send_log or Path(".local/simulate/send-log.jsonl")
    else:
        window = plan(mode, now, span, speed)
        start = window.start - timedelta(seconds=back)
        if mode == "realtime":  # the history goes out at once, the rest when it happens
            expectations = replace(expectations, received=lambda t: max(t, now))
        elif window.speed is None:  # backfill: everything arrives about now
            expectations = replace(expectations, received=lambda t: now)
        elif mode == "accelerated":
            anchor, pace = window.start, window.speed
            expectations = replace(expectations, received=lambda t: now + (t - anchor) / pace)
        injector = FaultInjector(town.city(), wire, town.faults, expectations)
        stream = fleet_stream(fleet, injector, start, window.end)
        pacer = Pacer(now if mode == "realtime" else window.start, window.speed)
        limit = max_messages

    stop_flag = [False]
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop_flag.__setitem__(0, True))
    client = connect(settings.mqtt, client_id=f"urbanpulse-sim-{town.tenant}-{mode}")
    counts = ", ".join(
        f"{k} {sum(1 for d in fleet if d.format == k)}" for k in sorted({d.format for d in fleet})
    )
    log.info(
        "simulating %r (tenant %r, seed %d): %d sensors (%s), mode %s, to %s:%d",
        town.name,
        town.tenant,
        town.seed,
        len(fleet),
        counts,
        mode,
        settings.mqtt.host,
        settings.mqtt.port,
    )
    outputs = [p for p in (ground_truth, send_log) if p is not None]
    for path in outputs:
        path.parent.mkdir(parents=True, exist_ok=True)
    truth = ground_truth.open("w", encoding="utf-8") if ground_truth else None
    sends = send_log.open("w", encoding="utf-8") if send_log else None
    try:
        summary = run_stream(
            client,
            stream,
            pacer,
            ground_truth=truth,
            send_log=sends,
            stop_flag=stop_flag,
            max_messages=limit,
        )
    finally:
        client.disconnect()
        client.loop_stop()
        for handle in (truth, sends):
            if handle is not None:
                handle.close()
    log.info("done: %s", summary.line())
    if ground_truth:
        log.info("ground truth of the injected faults: %s", ground_truth)
    if summary_out is not None:
        summary_out.parent.mkdir(parents=True, exist_ok=True)
        body = summary.to_json() | {"mode": mode, "tenant": town.tenant, "tenant_map": mapping}
        summary_out.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    app()
