"""``urbanpulse service``: install UrbanPulse as systemd services on one Linux VM."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from urbanpulse.service_install import InstallOptions, InstallPlan

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
    registry: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="sensor registry (.yaml or .csv, docs/registry.md): one MQTT account per "
            "device. Default: the one URBANPULSE_STREAMS__REGISTRY_PATH of /etc/urbanpulse/"
            "urbanpulse.env names; neither: the platform's account only",
        ),
    ] = None,
) -> None:
    """Write the systemd units, create the service user, and print the next commands.

    Units: urbanpulse-mosquitto, urbanpulse-kafka and urbanpulse-influxdb (the services),
    urbanpulse (the platform under its supervisor) and urbanpulse.target (all of them). Also
    the services' configuration and the platform's settings in /etc/urbanpulse (the settings
    only when missing), the broker's MQTT accounts (dynamic-security.json: the platform's, and
    one per device of the registry; known passwords are kept, new ones are added to
    mqtt/secrets.csv), and journald's log rotation. Run as root from a checkout outside /home
    (e.g. /opt/urbanpulse) after `make install`; run again after a registry change, then
    `systemctl restart urbanpulse-mosquitto`.
    """
    from urbanpulse.service_install import default_options, plan

    options = default_options(user)
    on_system = prefix is None and not dry_run
    _check_machine(options, on_system=on_system)
    try:
        steps = plan(options, existing=prefix, registry=registry)
    except ValueError as err:  # a registry that cannot be read (RegistryError is one)
        raise typer.BadParameter(str(err)) from err
    _files(steps, prefix, dry_run=dry_run)
    _commands(steps, options, on_system=on_system)
    typer.echo("\nNext:")
    for line in steps.next_steps:
        typer.echo(f"  {line}")


def _check_machine(options: InstallOptions, *, on_system: bool) -> None:
    """Refuse to change this machine when a part is missing or we are not root; else warn."""
    from urbanpulse.service_install import missing_parts

    missing = missing_parts(options)
    for line in missing:
        typer.echo(
            f"{'missing' if on_system else 'warning, missing on this machine'}: {line}", err=True
        )
    if missing and on_system:
        raise typer.Exit(1)
    if on_system and os.geteuid() != 0:
        typer.echo("run as root (sudo), or try --dry-run or --prefix DIR", err=True)
        raise typer.Exit(1)


def _files(steps: InstallPlan, prefix: Path | None, *, dry_run: bool) -> None:
    """Write the plan's files, or say what would be written."""
    from urbanpulse.service_install import target_path, write_files

    if not dry_run:
        for line in write_files(steps.files, prefix):
            typer.echo(line)
        return
    for planned in steps.files:
        typer.echo(f"would write {target_path(planned.path, prefix)} ({len(planned.text)} bytes)")


def _commands(steps: InstallPlan, options: InstallOptions, *, on_system: bool) -> None:
    """Run the plan's commands on this machine, or say what would be run."""
    from urbanpulse.service_install import run_commands

    if on_system:
        for line in run_commands(steps, options):
            typer.echo(line)
        return
    for command in steps.commands:
        typer.echo("would run " + shlex.join(command))
