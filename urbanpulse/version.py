"""The installed package's version, and the ``urbanpulse --version`` option that prints it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

PACKAGE = "urbanpulse"


def package_version() -> str:
    """The version of the installed ``urbanpulse`` distribution (from its metadata)."""
    try:
        return version(PACKAGE)
    except PackageNotFoundError:  # a source tree that was never installed (pip install -e .)
        return "0+unknown"


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"{PACKAGE} {package_version()}")
        raise typer.Exit()


def global_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,  # answered before any command or missing argument is looked at
            help="print the installed version and exit",
        ),
    ] = False,
) -> None:
    """Options of ``urbanpulse`` itself, before any command (registered in urbanpulse.cli)."""
