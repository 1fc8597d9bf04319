"""The Faust worker: readings topic → quality, dedupe, enrichment → InfluxDB raw + aggregates.

Agent bodies stay thin: the logic is in ``pipeline`` (pure), point building in ``points``, I/O
in ``influx_writer``. For each batch the worker:

1. parses the values, groups them by sensor (the Kafka key), loads each sensor's state;
2. runs :func:`streams.pipeline.process_sensor` (no I/O);
3. writes raw points, then aggregate and alert points, to InfluxDB, synchronously (retrying);
4. sends the stored readings (observations topic, the API's live feed), dead letters, alerts
   and the readings for district aggregation to Kafka, and waits until Kafka has them all;
5. saves the sensors' states (changelog topic), and only then lets Faust ack the batch.

So offsets are committed only for readings InfluxDB has accepted (Faust flushes the producer
before it commits), and a crash anywhere replays the batch: the state saved in step 5 makes a
replayed reading a duplicate, which is safe because everything the reading caused was
already stored and sent; a reading whose state was not yet saved is processed again,
identically, and overwrites the same points. The consumer (``streams.consumer``) commits a
partition only up to the first reading not yet acknowledged, across rebalances too.

District aggregates are computed by a second agent on an internal topic keyed by district, so
each district has one owner however many workers run.

State is a Faust table per agent with an explicit changelog partition: the partition of the
source message, so a partition's state moves with it on rebalance (Faust's default would use
the current event, which in a batch spanning partitions is the wrong one).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import faust
from influxdb_client import Point

from streams.alerts import AlertEvent
from streams.batches import parse_values, streams_dead_letter
from streams.consumer import SafeCommitConsumer
from streams.influx_writer import InfluxWriter
from streams.metrics import LAG_REFRESH_S, WorkerMetrics, refresh_lag
from streams.pipeline import (
    DistrictState,
    Outcome,
    SensorState,
    StreamsConfig,
    check_stale,
    process_district,
    process_sensor,
)
from streams.points import SensorLabels, aggregate_point, alert_point
from streams.quality import epoch_us
from streams.watchdog import PartitionStalled, StallWatch, check_partitions
from urbanpulse.influx_setup import ensure_buckets
from urbanpulse.kafka import ensure_topics, faust_credentials
from urbanpulse.logs import logging_config
from urbanpulse.model import Reading
from urbanpulse.registry import RegistryFile
from urbanpulse.settings import Settings

log = logging.getLogger(__name__)


def district_topic_name(settings: Settings) -> str:
    """The internal topic carrying readings keyed by district (one per worker group)."""
    return f"{settings.worker.app_id}-district-readings"


def create_app(settings: Settings) -> faust.App:
    """Build the Faust app and its agents from settings."""
    app = _App(
        settings.worker.app_id,
        broker=f"kafka://{settings.kafka.bootstrap}",
        broker_credentials=faust_credentials(settings.kafka),
        store="memory://",
        datadir=settings.worker.datadir,
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=0,
        web_enabled=False,
    )

    def raw_topic(name: str, **options: Any) -> Any:
        return app.topic(name, value_serializer="raw", key_serializer="raw", **options)

    readings_topic = raw_topic(settings.kafka.readings_topic)
    district_topic = raw_topic(
        district_topic_name(settings), partitions=settings.kafka.partitions, internal=True
    )
    sensor_table = app.Table("sensor-state", key_type=bytes, value_type=bytes)
    district_table = app.Table("district-state", key_type=bytes, value_type=bytes)
    worker = StreamWorker(
        settings,
        InfluxWriter(settings.influx),
        RegistryFile(settings.streams.registry_path, settings.streams.registry_reload_s),
        topics={
            "deadletter": raw_topic(settings.kafka.deadletter_topic),
            "alerts": raw_topic(settings.kafka.alerts_topic),
            "observations": raw_topic(settings.kafka.observations_topic),
            "district": district_topic,
        },
        tables={"sensor": TableState(sensor_table), "district": TableState(district_table)},
    )
    app.urbanpulse_worker = worker  # for tests and timers

    @app.agent(readings_topic)  # type: ignore[untyped-decorator]  # faust is untyped
    async def store_readings(stream: Any) -> None:
        """Check, store, aggregate and alert on every reading of the topic."""
        batches = stream.take_events(
            settings.worker.batch_size, within=settings.worker.batch_seconds
        )
        async for events in batches:
            with worker.in_batch():
                await worker.handle_readings([(e.message.partition, e.value) for e in events])

    @app.agent(district_topic)  # type: ignore[untyped-decorator]
    async def aggregate_districts(stream: Any) -> None:
        """Aggregate the readings of each district."""
        batches = stream.take_events(
            settings.worker.batch_size, within=settings.worker.batch_seconds
        )
        async for events in batches:
            with worker.in_batch():
                await worker.handle_district(
                    [(e.message.partition, e.key, e.value) for e in events]
                )

    @app.timer(settings.streams.stale_check_s)  # type: ignore[untyped-decorator]
    async def look_for_stale_sensors() -> None:
        """Open stale-sensor alerts for silent sensors of this worker's partitions."""
        assigned = {
            tp.partition
            for tp in app.consumer.assignment()
            if tp.topic == settings.kafka.readings_topic
        }
        await worker.check_stale(assigned, epoch_us(datetime.now(UTC)))

    @app.timer(LAG_REFRESH_S)  # type: ignore[untyped-decorator]
    async def refresh_consumer_lag() -> None:
        """Export how far this worker's partitions lag behind (``streams.metrics``)."""
        topics = {settings.kafka.readings_topic, district_topic_name(settings)}
        await refresh_lag(app.consumer, worker.metrics, topics)

    if settings.worker.stall_restart_s:
        watch = StallWatch(settings.worker.stall_restart_s)

        @app.timer(min(30.0, settings.worker.stall_restart_s / 4))  # type: ignore[untyped-decorator]
        async def watch_for_stalled_partitions() -> None:
            """Stop the worker if an assigned partition has lag that nothing reads."""
            if app.rebalancing or app.in_recovery:
                # Offsets stand still while a rebalance runs or tables are rebuilt from their
                # changelogs, which can take minutes for a big state: that is not a stall.
                watch.reset()
                return
            topics = {settings.kafka.readings_topic, district_topic_name(settings)}
            try:
                await check_partitions(app.consumer, topics, watch, worker.stuck_for)
            except PartitionStalled as err:  # crash: the worker exits non-zero, to be restarted
                await app.crash(err)

    return app


class _App(faust.App):  # type: ignore[misc]  # faust is untyped
    """A Faust app whose consumer never commits past a reading it did not process."""

    def _new_transport(self) -> Any:
        transport = super()._new_transport()
        transport.Consumer = SafeCommitConsumer  # see streams.consumer for why
        return transport


class TableState:
    """A Faust table of serialised states, written to a given changelog partition."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, key: bytes) -> bytes | None:
        """The stored state, or None."""
        value = self._table.data.get(key)
        return None if value is None else bytes(value)

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        """Store a state and log it to the changelog partition of its source partition."""
        self._table.data[key] = value
        self._table.send_changelog(
            partition, key, value, key_serializer="raw", value_serializer="raw"
        )

    def items(self) -> list[tuple[bytes, bytes]]:
        """Every state this worker holds."""
        return [(bytes(k), bytes(v)) for k, v in self._table.data.items()]


class StreamWorker:
    """The adapter around the pure pipeline: states in, I/O out."""

    def __init__(
        self,
        settings: Settings,
        writer: InfluxWriter,
        registry: RegistryFile,
        topics: dict[str, Any],
        tables: dict[str, TableState],
    ) -> None:
        self._settings = settings
        self._source = settings.kafka.readings_topic
        self.writer = writer
        self._registry = registry
        self.topics = topics
        self.tables = tables
        self.config = StreamsConfig.from_settings(settings.streams)
        self.received = 0
        self.stored = 0
        self.duplicates = 0
        self.metrics = WorkerMetrics()
        self._batches: dict[object, float] = {}  # batches in progress → start (monotonic)
        self._unconfirmed: set[Awaitable[Any]] = set()  # sends Kafka has not acknowledged yet

    @contextmanager
    def in_batch(self) -> Iterator[None]:
        """Mark a batch as in progress, for :meth:`stuck_for`."""
        token = object()  # unique while the batch runs (two agents run batches concurrently)
        self._batches[token] = time.monotonic()
        try:
            yield
        finally:
            self._batches.pop(token, None)

    def stuck_for(self) -> float:
        """Seconds the oldest batch in progress has run (0: none); long = InfluxDB slow or away."""
        if not self._batches:
            return 0.0
        return time.monotonic() - min(self._batches.values())

    async def handle_readings(self, values: Sequence[tuple[int, bytes]]) -> int:
        """Process one batch of (partition, value) from the readings topic."""
        letters = []
        groups: dict[bytes, tuple[int, list[Reading]]] = {}
        for partition, value in values:
            batch = parse_values([value], self._source)
            letters += batch.dead_letters
            for reading in batch.readings:
                groups.setdefault(reading.key, (partition, []))[1].append(reading)
        registry = self._registry.current()
        outcome = Outcome()
        states: dict[bytes, tuple[int, SensorState]] = {}
        for key, (partition, readings) in groups.items():
            raw = self.tables["sensor"].get(key)
            state = SensorState() if raw is None else SensorState.model_validate_json(raw)
            info = registry.get((readings[0].tenant, readings[0].sensor_id))
            state, result = process_sensor(
                state, readings, info, self._registry.enabled, self.config
            )
            state.partition = partition
            states[key] = (partition, state)
            outcome.merge(result)
        stored = await self._write_raw(outcome.stored)
        for reading in stored:  # the API's live feed: only what InfluxDB accepted
            # The feed cannot see the registry: readings of non-open sensors never enter it.
            if self._labels(reading.tenant, reading.sensor_id).privacy == "open":
                await self._send("observations", reading.key, reading.to_bytes())
        await self._write_aggregates(outcome, outcome.alerts)
        for letter in letters:
            await self._send("deadletter", None, letter.to_bytes())
        for reading, reason, detail in outcome.dead_letters:
            letter = streams_dead_letter(reading.to_bytes(), self._source, reason, detail)
            await self._send("deadletter", None, letter.to_bytes())
        for district, reading in outcome.to_district:
            key = f"{reading.tenant}/{district}".encode()
            await self._send("district", key, reading.to_bytes())
        await self._confirm_sends()
        for key, (partition, state) in states.items():
            self.tables["sensor"].put(partition, key, state.model_dump_json().encode())
        self.stored += len(stored)
        refused = len(letters) + len(outcome.dead_letters) + len(outcome.stored) - len(stored)
        self.metrics.count_readings(stored, refused, outcome.duplicates)
        self.duplicates += outcome.duplicates
        self.received += len(values)
        if outcome.duplicates:
            log.info("dropped %d duplicate readings", outcome.duplicates)
        return len(stored)

    async def handle_district(self, values: Sequence[tuple[int, bytes, bytes]]) -> None:
        """Process one batch of (partition, key, value) from the district topic."""
        groups: dict[bytes, tuple[int, list[Reading]]] = {}
        for partition, key, value in values:
            groups.setdefault(key, (partition, []))[1].append(Reading.from_bytes(value))
        outcome = Outcome()
        states = {}
        for key, (partition, readings) in groups.items():
            tenant, district = key.decode().split("/", 1)
            raw = self.tables["district"].get(key)
            state = DistrictState() if raw is None else DistrictState.model_validate_json(raw)
            state, result = process_district(state, tenant, district, readings, self.config)
            states[key] = (partition, state)
            outcome.merge(result)
        await self._write_aggregates(outcome, [])
        await self._confirm_sends()
        for key, (partition, state) in states.items():
            self.tables["district"].put(partition, key, state.model_dump_json().encode())

    async def check_stale(self, partitions: set[int], now_us: int) -> None:
        """Open stale alerts for sensors of the given partitions that went silent."""
        events = []
        changed: list[tuple[int, bytes, SensorState]] = []
        registry = self._registry.current()
        for key, raw in self.tables["sensor"].items():
            state = SensorState.model_validate_json(raw)
            if state.partition not in partitions:
                continue
            info = registry.get((state.tenant, state.sensor_id))
            if info is not None and info.status == "retired":
                continue  # taken out of service: its silence is expected (docs/registry.md)
            state, event = check_stale(state, now_us, self.config)
            if event is not None and state.partition is not None:
                events.append(event)
                changed.append((state.partition, key, state))
        if not events:
            return
        # Alerts stored and sent before the states that say they were: a crash in between
        # repeats an alert (same point) rather than losing it.
        await self._write_aggregates(Outcome(), events)
        await self._confirm_sends()
        for partition, key, state in changed:
            self.tables["sensor"].put(partition, key, state.model_dump_json().encode())

    async def _write_aggregates(self, outcome: Outcome, alerts: list[AlertEvent]) -> None:
        points: list[Point] = [
            aggregate_point(u, self._labels(u.tenant, u.subject).privacy)
            if u.scope == "sensor"
            else aggregate_point(u)
            for u in outcome.aggregates.values()
        ]
        points += [alert_point(a, self._labels(a.tenant, a.sensor_id).privacy) for a in alerts]
        kind = "aggregate" if outcome.aggregates else "alert"  # one request: timed as one
        counts = {"aggregate": len(outcome.aggregates), "alert": len(alerts)}
        with self.metrics.timed_write(kind, counts):
            await asyncio.to_thread(self.writer.write_aggregates, points)
        self.metrics.count_alerts(alerts)
        for alert in alerts:
            key = f"{alert.tenant}/{alert.sensor_id}".encode()
            await self._send("alerts", key, alert.to_bytes())

    def _labels(self, tenant: str, sensor_id: str) -> SensorLabels:
        """The registry labels of a sensor (privacy, licence, type) for its points."""
        return SensorLabels.of(self._registry.current().get((tenant, sensor_id)))

    def _labels_of(self, readings: list[Reading]) -> dict[bytes, SensorLabels]:
        return {r.key: self._labels(r.tenant, r.sensor_id) for r in readings}

    async def _send(self, name: str, key: bytes | None, value: bytes) -> None:
        """Send to an output topic (created at start-up, see ``urbanpulse.kafka``)."""
        self._unconfirmed.add(await self.topics[name].send(key=key, value=value))

    async def _confirm_sends(self) -> None:
        """Wait until Kafka has every message sent so far.

        Called before states are saved: a saved state marks its readings as seen, so a
        replay after a crash drops them as duplicates and would never send again a district
        reading, alert or dead letter that was still in the producer's buffer. The two agents
        and the stale timer share the set: each waits for all sends outstanding when it asks,
        its own among them, and only acknowledged ones leave the set.
        """
        pending = set(self._unconfirmed)
        await asyncio.gather(*pending)
        self._unconfirmed -= pending

    async def _write_raw(self, readings: list[Reading]) -> list[Reading]:
        """Write raw points; return the readings InfluxDB accepted (the rest: dead letters)."""
        try:
            with self.metrics.timed_write("raw", {"raw": len(readings)}):
                await asyncio.to_thread(self.writer.write, readings, self._labels_of(readings))
            return readings
        except Exception as err:  # the batch holds a point InfluxDB refuses for good
            log.warning("InfluxDB refused a batch (%s); writing one by one", err)
        written = []
        for reading in readings:
            try:
                with self.metrics.timed_write("raw", {"raw": 1}):
                    await asyncio.to_thread(
                        self.writer.write, [reading], self._labels_of([reading])
                    )
                written.append(reading)
            except Exception as err:
                letter = streams_dead_letter(
                    reading.to_bytes(), self._source, "influx_rejected", str(err)
                )
                await self._send("deadletter", None, letter.to_bytes())
        return written


def run(settings: Settings) -> int:
    """Run the worker until SIGINT/SIGTERM; the entry point of ``urbanpulse worker``."""
    ensure_buckets(settings.influx)  # InfluxDB 2.x: buckets and retention; 1.8: nothing
    kafka = settings.kafka
    ensure_topics(kafka, [kafka.deadletter_topic, kafka.alerts_topic, kafka.observations_topic])
    app = create_app(settings)
    app.urbanpulse_worker.metrics.serve(settings.metrics.host, settings.metrics.worker_port)
    worker = _BoundedStopWorker(
        settings.worker.stop_timeout_s,
        app,
        loglevel=settings.log_level.lower(),
        # Faust would install its own coloured handler: log like every other component.
        logging_config=logging_config(settings.log_level, "worker", settings.log_format),
        quiet=settings.log_format == "json",  # no start-up banner amid the JSON lines
    )
    worker.execute_from_commandline()
    return 0


class _BoundedStopWorker(faust.Worker):  # type: ignore[misc]  # faust is untyped
    """A ``faust.Worker`` that exits for sure when its clean stop hangs.

    A SIGTERM that lands during a consumer-group rebalance was seen to leave the worker
    heart-beating to an unavailable group coordinator for 30 s and more, until Compose or
    Kubernetes killed it. Exiting is safe: offsets are committed only after InfluxDB accepted
    the data, so whatever was not committed is read again by the next owner of the partition.
    """

    def __init__(self, stop_timeout_s: float, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stop_timeout_s = stop_timeout_s

    def _schedule_shutdown(self, signum: signal.Signals) -> None:
        if not self._signal_stop_time:
            threading.Thread(target=_exit_after, args=(self._stop_timeout_s,), daemon=True).start()
        super()._schedule_shutdown(signum)


def _exit_after(seconds: float) -> None:
    time.sleep(seconds)
    log.warning(
        "clean stop took more than %.0f s; exiting now (uncommitted readings are read again "
        "by the next worker, none is lost)",
        seconds,
    )
    logging.shutdown()
    os._exit(0)
