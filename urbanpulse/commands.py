"""The commands that need only the shared core: ``up``, ``status``, ``influx-setup`` and
``credentials``.

Each is a plain function with typer annotations; :mod:`urbanpulse.cli` registers them beside
the commands of the parts. Heavy modules are imported inside the functions, so that
``urbanpulse --help`` stays quick.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

log = logging.getLogger("urbanpulse")


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
    from urbanpulse.startup import start_component
    from urbanpulse.supervisor import run_platform

    raise typer.Exit(run_platform(start_component("up"), simulate, watch_service or []))


def status(
    json_output: Annotated[
        bool, typer.Option("--json", help="print one JSON document instead of the screen")
    ] = False,
    tenant: Annotated[
        str | None,
        typer.Option(help="only this tenant's readings, alerts and registered sensors"),
    ] = None,
    max_lag: Annotated[
        int,
        typer.Option(help="more readings than this waiting for the stream worker is a problem"),
    ] = 10_000,
    max_quiet_minutes: Annotated[
        float,
        typer.Option(help="a tenant with no reading stored for this long is a problem"),
    ] = 10.0,
    max_deadletters: Annotated[
        int | None,
        typer.Option(
            help="more dead letters in the last hour than this is a problem (default: never)"
        ),
    ] = None,
    lookback_hours: Annotated[
        float, typer.Option(help="how far back to look for each tenant's newest reading")
    ] = 24.0,
    timeout: Annotated[
        float, typer.Option(help="seconds each service may take to answer one request")
    ] = 3.0,
) -> None:
    """Say whether the platform works, on one screen; exit 1 when something is wrong.

    Shows whether MQTT, Kafka and InfluxDB answer, each component of `urbanpulse up` (its
    status file), the stream worker's consumer lag, readings stored per tenant in the last
    minute and hour and the newest one, dead letters and alerts of the last hour, and the
    stale sensors. Something is wrong when a service does not answer, a component is down or
    crash-looping, the lag passes --max-lag, or a tenant stored no reading for
    --max-quiet-minutes (docs/production.md, "Is it working?"). Exit code 0: all is well;
    1: something is wrong; 2: a usage error. Answers within 3 x --timeout + 2 seconds
    even when a service is down, so cron and monitoring checks can call it.
    """
    import re
    from datetime import UTC, datetime, timedelta

    from urbanpulse.model import ID_PATTERN
    from urbanpulse.startup import start_component
    from urbanpulse.status_probe import ProbeOptions, gather
    from urbanpulse.status_screen import as_json, render
    from urbanpulse.status_verdict import Thresholds, exit_code, verdict

    if tenant is not None and not re.fullmatch(ID_PATTERN, tenant):
        raise typer.BadParameter(f"not a tenant id: {tenant!r}", param_hint="--tenant")
    if timeout <= 0 or lookback_hours <= 0 or max_quiet_minutes <= 0:
        raise typer.BadParameter("--timeout, --lookback-hours and --max-quiet-minutes are > 0")
    settings = start_component("status")
    quiet = timedelta(minutes=max_quiet_minutes)
    options = ProbeOptions(
        timeout_s=timeout,
        tenant=tenant,
        lookback=timedelta(hours=lookback_hours),
        recent=max(timedelta(hours=1), quiet),  # newest readings: cheap here, costly over days
    )
    facts = gather(settings, options, datetime.now(UTC))
    thresholds = Thresholds(
        max_lag=max_lag,
        max_quiet=quiet,
        max_deadletters=max_deadletters,
    )
    result = verdict(facts, thresholds)
    typer.echo(as_json(facts, result) if json_output else render(facts, result), nl=False)
    raise typer.Exit(exit_code(result))


def influx_setup() -> None:
    """Create the InfluxDB 2.x buckets, or set their retention (1.8: nothing to do).

    Idempotent, never deletes; the worker does the same at every start. For a one-shot job.
    """
    from urbanpulse.influx_setup import ensure_buckets, is_v1
    from urbanpulse.startup import start_component

    settings = start_component("influx-setup")
    if is_v1(settings.influx):
        log.info("InfluxDB 1.8 (org '-'): nothing to set up here")
        return
    ensure_buckets(settings.influx)  # logs each change


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
    from urbanpulse.credentials import credential_files
    from urbanpulse.registry import kind_of, parse_registry
    from urbanpulse.startup import start_component

    start_component("credentials")
    sensors = parse_registry(registry.read_text(), kind_of(registry))
    secrets = out / "secrets.csv"
    files = credential_files(sensors, secrets.read_text() if secrets.exists() else "")
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = out / name
        path.touch(mode=0o600 if name == "secrets.csv" else 0o644)  # hashes only elsewhere
        path.write_text(text)
    log.info("wrote %s for %d sensors (keep secrets.csv private)", ", ".join(files), len(sensors))
