"""The ``urbanpulse`` command: one entry point for every component of the platform."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from dashboards.cli import app as dashboards_app
from simulators.cli import simulate
from urbanpulse.logs import configure
from urbanpulse.settings import Settings

app = typer.Typer(
    help="UrbanPulse: an open-data IoT platform for city sensor pilots. "
    "Settings come from URBANPULSE_* environment variables (see README, 'Configuration').",
    no_args_is_help=True,
    add_completion=False,
)
log = logging.getLogger("urbanpulse")
app.add_typer(dashboards_app, name="dashboards")


def _settings(component: str) -> Settings:
    settings = Settings()
    configure(settings.log_level, component, settings.log_format)
    return settings


@app.command()
def up(
    simulate: Annotated[bool, typer.Option(help="also run the bundled simulator")] = True,
) -> None:
    """Run ingest, worker, API and a simulator together, with their logs in one stream.

    Expects the local services to be running (``make up`` starts them first). Stops every
    process cleanly on Ctrl-C or SIGTERM.
    """
    from urbanpulse.supervisor import run_platform

    raise typer.Exit(run_platform(_settings("up"), simulate))


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
    from urbanpulse.credentials import credential_files
    from urbanpulse.registry import kind_of, parse_registry

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


app.command()(simulate)


if __name__ == "__main__":
    app()
