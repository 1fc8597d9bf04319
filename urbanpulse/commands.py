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
    """Run ingest, worker, API, the indicator job and a simulator together, keep them up.

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


def _pairs(items: list[str] | None, option: str) -> list[tuple[str, str]]:
    """``NAME=VALUE`` option values as pairs; a value without ``=`` is refused."""
    pairs = []
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise typer.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint=option)
        pairs.append((name, value))
    return pairs


def credentials(
    out: Annotated[
        Path,
        typer.Option(help="folder for dynamic-security.json, passwords and acl (the broker's)"),
    ],
    registry: Annotated[
        Path | None,
        typer.Option(
            help="sensor registry (.yaml or .csv, docs/registry.md) [default: "
            "URBANPULSE_STREAMS__REGISTRY_PATH; neither: no device accounts]"
        ),
    ] = None,
    secrets: Annotated[
        Path | None,
        typer.Option(
            help="the generated plain passwords (CSV, mode 0600) [default: OUT/secrets.csv]"
        ),
    ] = None,
    ingest: Annotated[
        list[str] | None,
        typer.Option(
            help="an ingestor's account, named like its MQTT client id; repeat for each "
            "[default: urbanpulse-ingest]"
        ),
    ] = None,
    shared_group: Annotated[
        str, typer.Option(help="the ingestors' shared-subscription group ($share/GROUP/...)")
    ] = "ingest",
    publisher: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=TOPIC_FILTER: an account that may only publish there (a network "
            "server's MQTT integration, a bridge, the simulator); repeat to add filters"
        ),
    ] = None,
    monitor: Annotated[
        list[str] | None,
        typer.Option(help="an account that may only read $SYS/# (e.g. the broker's health check)"),
    ] = None,
    password_file: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=FILE: take this account's password from FILE (e.g. a Docker secret) "
            "instead of generating one; it is not written to the secrets CSV"
        ),
    ] = None,
) -> None:
    """Write the broker's MQTT accounts: one per device of the registry, plus the platform's.

    A device may only publish on its own topics; an ingest account may read every device and
    network-server topic, alone or in its shared-subscription group; publishers may publish
    only where told; monitors only read $SYS. dynamic-security.json is for Mosquitto 2's
    dynamic security plugin (it also refuses forbidden subscriptions); passwords and acl for a
    plain password_file/acl_file broker. Re-running keeps the passwords of known accounts (read
    back from the secrets CSV, which stays private: mode 0600). docs/production.md explains.
    """
    from urbanpulse.credentials import (
        INGEST_USER,
        Services,
        credential_files,
        registry_devices,
    )
    from urbanpulse.registry import RegistryError, kind_of, parse_registry, read_registry
    from urbanpulse.settings import read_secret_file
    from urbanpulse.startup import start_component

    settings = start_component("credentials")
    registry = registry or (
        Path(settings.streams.registry_path) if settings.streams.registry_path else None
    )
    try:
        sensors = parse_registry(read_registry(registry), kind_of(registry)) if registry else {}
    except (OSError, RegistryError) as err:  # a clear line, not a traceback (issue 15)
        raise typer.BadParameter(str(err), param_hint="--registry") from err
    publishers: dict[str, tuple[str, ...]] = {}
    for name, topic in _pairs(publisher, "--publisher"):
        publishers[name] = (*publishers.get(name, ()), topic)
    passwords = {}
    for name, path in _pairs(password_file, "--password-file"):
        try:
            passwords[name] = read_secret_file(path)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--password-file") from err
        if not passwords[name]:
            raise typer.BadParameter(f"{path} is empty", param_hint="--password-file")
    services = Services(
        ingest=tuple(ingest or [INGEST_USER]),
        shared_group=shared_group,
        publishers=publishers,
        monitors=tuple(monitor or []),
        passwords=passwords,
    )
    secrets = secrets or out / "secrets.csv"
    known = secrets.read_text() if secrets.exists() else ""
    try:
        files = credential_files(registry_devices(sensors), known, services=services)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        private = name == "secrets.csv"
        _write_atomically(secrets if private else out / name, text, 0o600 if private else 0o644)
    log.info(
        "wrote %s for %d devices from %s (keep %s private)",
        ", ".join(files),
        len(registry_devices(sensors)),
        registry or "no registry",
        secrets,
    )


def _write_atomically(path: Path, text: str, mode: int) -> None:
    """Replace the file in one step (a reader never sees half of it), with this mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.new")
    temporary.unlink(missing_ok=True)
    temporary.touch(mode=mode)  # the mode before any byte is written: hashes only elsewhere
    temporary.write_text(text)
    temporary.chmod(mode)  # touch() applies the umask
    temporary.replace(path)
