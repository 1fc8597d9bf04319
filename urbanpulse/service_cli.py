"""``urbanpulse service``: install UrbanPulse as systemd services on one Linux VM."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Run UrbanPulse as systemd services on a plain Linux VM (docs/production.md, "
    "'Single VM').",
    no_args_is_help=True,
)


@app.command()
def install(
    prefix: Annotated[
        Path | None,
        typer.Option(
            help="write every file below this folder (e.g. for a package or a test) and change "
            "nothing else: no user, no systemctl"
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="only print the files and commands; write and run nothing")
    ] = False,
    user: Annotated[str, typer.Option(help="the unprivileged user the services run as")] = (
        "urbanpulse"
    ),
) -> None:
    """Write the systemd units, create the service user, and print the next commands.

    Units: urbanpulse-mosquitto, urbanpulse-kafka and urbanpulse-influxdb (the services),
    urbanpulse (the platform under its supervisor) and urbanpulse.target (all of them). Also
    the services' configuration and the platform's settings in /etc/urbanpulse (settings and
    MQTT accounts only when missing), and journald's log rotation. Run as root from a checkout
    outside /home (e.g. /opt/urbanpulse) after `make install`.
    """
    from urbanpulse.service_install import (
        default_options,
        missing_parts,
        plan,
        run_commands,
        write_files,
    )

    options = default_options(user)
    missing = missing_parts(options)
    if missing and prefix is None and not dry_run:
        for line in missing:
            typer.echo(f"missing: {line}", err=True)
        raise typer.Exit(1)
    for line in missing:
        typer.echo(f"warning, missing on this machine: {line}", err=True)
    if prefix is None and not dry_run and os.geteuid() != 0:
        typer.echo("run as root (sudo), or try --dry-run or --prefix DIR", err=True)
        raise typer.Exit(1)
    steps = plan(options, existing=prefix)
    if dry_run:
        for planned in steps.files:
            where = (prefix / planned.path.relative_to("/")) if prefix else planned.path
            typer.echo(f"would write {where} ({len(planned.text)} bytes)")
    else:
        for line in write_files(steps.files, prefix):
            typer.echo(line)
    if dry_run or prefix is not None:
        for command in steps.commands:
            typer.echo("would run " + shlex.join(command))
    else:
        for line in run_commands(steps, options):
            typer.echo(line)
    typer.echo("\nNext:")
    for line in steps.next_steps:
        typer.echo(f"  {line}")
