"""The commands that need only the shared core: ``up``, ``influx-setup`` and ``credentials``.

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
