"""``urbanpulse ingest``: the command that runs the MQTT ingestor."""

from __future__ import annotations

import typer


def ingest() -> None:
    """Move MQTT messages to Kafka: decode, dead-letter the bad ones, ack only after Kafka."""
    from ingest.mqtt_ingestor import run
    from urbanpulse.startup import start_component

    raise typer.Exit(run(start_component("ingest")))
