"""``urbanpulse worker``: the command that runs the Faust stream worker."""

from __future__ import annotations

import typer


def worker() -> None:
    """Run the Faust stream worker that stores readings from Kafka in InfluxDB."""
    from streams.app import run
    from urbanpulse.startup import start_component

    raise typer.Exit(run(start_component("worker")))
