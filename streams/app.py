"""The Faust worker: readings topic → InfluxDB raw bucket, in batches.

Agent bodies stay thin: parsing is in ``batches``, point building in ``points``, I/O in
``influx_writer``. Each batch is written synchronously (in a thread) before the agent takes the
next, so offsets are only committed for readings InfluxDB has accepted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import faust

from streams.batches import parse_values, streams_dead_letter
from streams.influx_writer import InfluxWriter
from urbanpulse.model import Reading
from urbanpulse.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    """Build the Faust app and its agents from settings."""
    app = faust.App(
        settings.worker.app_id,
        broker=f"kafka://{settings.kafka.bootstrap}",
        store="memory://",
        datadir=settings.worker.datadir,
        topic_partitions=settings.kafka.partitions,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
    )
    readings_topic = app.topic(
        settings.kafka.readings_topic, value_serializer="raw", key_serializer="raw"
    )
    deadletter_topic = app.topic(
        settings.kafka.deadletter_topic, value_serializer="raw", key_serializer="raw"
    )
    writer = InfluxWriter(settings.influx)
    store = _Store(writer, deadletter_topic, settings.kafka.readings_topic)

    @app.agent(readings_topic)  # type: ignore[untyped-decorator]  # faust is untyped
    async def store_readings(stream: Any) -> AsyncIterator[int]:
        """Write every reading of the topic to the raw bucket."""
        batches = stream.take(settings.worker.batch_size, within=settings.worker.batch_seconds)
        async for values in batches:
            yield await store.handle(values)

    return app


class _Store:
    """Stores one batch: the readings to InfluxDB, the rest to the dead-letter topic."""

    def __init__(self, writer: InfluxWriter, deadletter: Any, source_topic: str) -> None:
        self._writer = writer
        self._deadletter = deadletter
        self._source = source_topic
        self.stored = 0

    async def handle(self, values: Sequence[bytes]) -> int:
        """Store a batch and return how many readings were written."""
        batch = parse_values(list(values), self._source)
        try:
            await asyncio.to_thread(self._writer.write, batch.readings)
            written = len(batch.readings)
        except Exception as err:  # the batch holds a point InfluxDB refuses for good
            log.warning("InfluxDB refused a batch (%s); writing one by one", err)
            written = await self._write_one_by_one(batch.readings)
        for letter in batch.dead_letters:
            await self._deadletter.send(value=letter.to_bytes())
        self.stored += written
        log.debug("stored %d readings (%d in total)", written, self.stored)
        return written

    async def _write_one_by_one(self, readings: list[Reading]) -> int:
        written = 0
        for reading in readings:
            try:
                await asyncio.to_thread(self._writer.write, [reading])
                written += 1
            except Exception as err:
                letter = streams_dead_letter(
                    reading.to_bytes(), self._source, "influx_rejected", str(err)
                )
                await self._deadletter.send(value=letter.to_bytes())
        return written


def run(settings: Settings) -> int:
    """Run the worker until SIGINT/SIGTERM; the entry point of ``urbanpulse worker``."""
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.lower())
    worker.execute_from_commandline()
    return 0
