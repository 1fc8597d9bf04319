"""The ``urbanpulse`` command: one entry point for every component of the platform."""

from __future__ import annotations

import logging
import signal
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from urbanpulse.logs import configure
from urbanpulse.settings import Settings

app = typer.Typer(
    help="UrbanPulse: an open-data IoT platform for city sensor pilots. "
    "Settings come from URBANPULSE_* environment variables (see README, 'Configuration').",
    no_args_is_help=True,
    add_completion=False,
)
log = logging.getLogger("urbanpulse")


def _settings(component: str) -> Settings:
    settings = Settings()
    configure(settings.log_level, component)
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
    )


@app.command()
def simulate(
    tenant: Annotated[str, typer.Option(help="tenant (municipality) id in the topics")] = "demo",
    sensors: Annotated[int, typer.Option(min=1, help="number of sensors")] = 6,
    interval: Annotated[float, typer.Option(min=0.01, help="seconds between readings")] = 5.0,
    rounds: Annotated[
        int | None, typer.Option(min=1, help="stop after this many rounds [default: run forever]")
    ] = None,
    realtime: Annotated[
        bool,
        typer.Option(
            help="pace messages by the clock; --no-realtime sends at once, "
            "with event times spaced by --interval ending now"
        ),
    ] = True,
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same values")] = 1,
) -> None:
    """Publish simulated readings (weather, air quality, noise) as native JSON over MQTT."""
    from simulators.publisher import connect, publish
    from simulators.town import make_town, messages

    settings = _settings("simulate")
    town = make_town(sensors, seed=seed)
    step = timedelta(seconds=interval)
    now = datetime.now(UTC).replace(microsecond=0)
    start = now if realtime or rounds is None else now - step * rounds
    stop_flag = [False]
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop_flag.__setitem__(0, True))
    client = connect(settings.mqtt, client_id=f"urbanpulse-sim-{tenant}")
    log.info(
        "publishing %d sensors of tenant %r to %s:%d every %.1f s",
        sensors,
        tenant,
        settings.mqtt.host,
        settings.mqtt.port,
        interval,
    )
    try:
        stream = messages(tenant, town, start, step, rounds, seed=seed)
        summary = publish(client, stream, realtime, stop_flag)
    finally:
        client.disconnect()
        client.loop_stop()
    log.info("done: %s", summary.line())


if __name__ == "__main__":
    app()
