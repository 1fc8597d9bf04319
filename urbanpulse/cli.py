"""The ``urbanpulse`` command: one entry point that gathers every component's commands.

Each command lives with its part (``ingest/cli.py``, ``streams/cli.py``,
``streams/kpis/cli.py``, ``api/cli.py`` (``api`` and ``report``), ``simulators/cli.py``,
``dashboards/cli.py``) or, if it needs only the shared core, in :mod:`urbanpulse.commands`.
This module only registers them, in the order ``--help`` lists them; it is the one module of
``urbanpulse`` that may import a part (import-linter checks).
"""

from __future__ import annotations

import typer

from api.cli import api, report
from dashboards.cli import app as dashboards
from ingest.cli import ingest
from simulators.cli import simulate
from streams.cli import worker
from streams.kpis.cli import kpis
from urbanpulse.commands import credentials, influx_setup, status, up
from urbanpulse.service_cli import app as service
from urbanpulse.version import global_options

app = typer.Typer(
    help="UrbanPulse: an open-data IoT platform for city sensor pilots. "
    "Settings come from URBANPULSE_* environment variables (see README, 'Configuration').",
    no_args_is_help=True,
    add_completion=False,
)
app.callback()(global_options)
app.command()(up)
app.command()(status)
app.command()(ingest)
app.command()(worker)
app.command("influx-setup")(influx_setup)
app.command()(api)
app.command()(credentials)
app.command()(simulate)
app.command()(kpis)
app.command()(report)
app.add_typer(dashboards, name="dashboards")
app.add_typer(service, name="service")

if __name__ == "__main__":
    app()
