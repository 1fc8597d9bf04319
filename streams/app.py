"""The Faust worker: readings topic → quality, dedupe, enrichment → InfluxDB raw + aggregates.

Agent bodies stay thin: the logic is in ``pipeline`` (pure), line protocol in ``points``, I/O
in ``influx_writer``, state keeping in ``snapshots``. One Faust event is one Kafka record (a
batch of readings, ``urbanpulse.wire``). A batch Faust hands over is processed in runs of at
most ``MAX_RUN_BYTES`` of records. For each run of records the worker:

1. decodes the records, drops redelivered readings that repeat a stored one
   (``streams.redelivery``), groups the readings by sensor;
2. runs :func:`streams.pipeline.process_sensor` on each sensor's live state (in memory,
   changed in place, marked dirty), starting the raw points' write every ``RAW_PART``
   stored readings (threads, retrying until InfluxDB takes them);
3. then completes in the background while the next run is processed (one run completes at
   a time, in order; :meth:`StreamWorker.start_readings`): the rest of the raw points and,
   at the same time, the alerts written;
4. sends the stored readings (observations topic, the API's live feed), dead letters, alerts
   and the touched sensor windows of each district to Kafka, and waits until Kafka has them
   all (once per batch);
5. holds the batch's acks. Every ``URBANPULSE_WORKER__SNAPSHOT_S`` (and at once while a
   rebalance runs) the dirty states are saved to the table's changelog; once Kafka confirmed
   them, the held acks are released, so Faust commits offsets only up to records whose
   points are stored and whose effect on the state is saved.

A crash replays the records after the committed offsets against the states of the last
snapshot: each reading is processed again exactly as before and overwrites the same points
(docs/streams.md, "State and offsets"). The consumer (``streams.consumer``) commits a
partition only up to the first record not yet acknowledged, across rebalances too.

District aggregates are computed by a second agent on an internal topic keyed by district, so
each district has one owner however many workers run; it combines the sensors' forwarded
window aggregates.

States are saved to Faust tables with an explicit changelog partition: the partition of the
source records, so a partition's states move with it on rebalance.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import faust
import msgspec

from streams.alerts import AlertEvent
from streams.batches import ParsedBatch, parse_records, split_by_size, streams_dead_letter
from streams.changelog import ChangelogWriter, Row, RowWriter
from streams.consumer import SafeCommitConsumer
from streams.deliveries import confirmed
from streams.influx_writer import LINES_PER_REQUEST, InfluxWriter
from streams.malloc import set_mmap_threshold
from streams.metrics import LAG_REFRESH_S, WorkerMetrics, refresh_lag
from streams.pipeline import (
    Outcome,
    StreamsConfig,
    check_stale,
    district_rows,
    mark_written,
    new_district_state,
    process_district,
    process_sensor,
    silent_for_good,
    unwritten_aggregates,
)
from streams.points import OPEN, SensorLabels, aggregate_line, alert_line
from streams.quality import epoch_us
from streams.redelivery import drop_repeats, screen, stored_ids_query
from streams.snapshots import Ack, Codec, Flush, LiveStates, StateTable
from streams.state import (
    DistrictState,
    SensorState,
    decode_district,
    decode_record,
    decode_sensor,
    encode_district,
    encode_record,
    encode_sensor,
    split_record,
)
from streams.watchdog import PartitionStalled, StallWatch, check_partitions
from urbanpulse.feed import feed_records
from urbanpulse.influx_setup import ensure_buckets
from urbanpulse.kafka import ensure_topics_apart, faust_credentials
from urbanpulse.logs import logging_config
from urbanpulse.model import Reading, by_sensor
from urbanpulse.registry import RegistryFile, SensorInfo
from urbanpulse.settings import Settings

log = logging.getLogger(__name__)

# How often the snapshot timer looks whether a snapshot is due.
SNAPSHOT_TICK_S = 0.5
# How often snapshots are taken while Faust waits for acks (a rebalance, a stop).
WAIT_EMPTY_SNAPSHOT_S = 0.2
# Records whose acks are held, in bytes of their payloads (what a crash makes the next worker
# read again; the payloads themselves are dropped once processed, ``_drop_payloads``): past
# half this much the snapshot timer takes a snapshot early (batches go on meanwhile), past
# all of it the agent waits for a snapshot before its next batch.
MAX_HELD_BYTES = 8 * 1024 * 1024
# A batch of records is processed in runs of at most this many bytes of record values (about
# 5,000 readings at 300 bytes each): a batch's working memory grows with its readings, and a
# record can hold 1,000. At 50 readings per message (benchmarks.throughput --per-message 50)
# the worker's RSS was 198 MB with whole batches, 153 MB with these runs (146 MB with runs
# of 512 kB, which cost 10 % more worker CPU per reading).
MAX_RUN_BYTES = 1536 * 1024
# What the consumer reads ahead: bytes per partition and fetch (Faust's default 1 MB), and
# records per stream buffer (Faust's default 4,096). With 10,000 sensors at 1 reading per
# message the defaults kept 16 MB more resident (worker RSS 167-169 MB against 151-154,
# benchmarks.throughput --sensors 10000, two runs each); neither rate nor CPU moved, at 50
# readings per message either. The stream buffer counts records, not bytes, and a record
# holds up to 1,000 readings (about 300 kB): with 512 records the read-ahead held 24 MB at
# the peak (memray, 10,000 sensors); with 64 records (about 2 runs of MAX_RUN_BYTES at that
# load) the worker's RSS was 176-180 MB against 183-193 in three and two runs, the rate
# unchanged, and 48,614/s at 50 readings per message (docs/performance.md, 2026-12-06,
# "Raw lines, names matched once, a smaller read-ahead").
FETCH_BYTES = 256 * 1024
STREAM_BUFFER = 64
# A batch's raw points are written in parts of this many readings while the rest of it is
# processed (``_RawWrites``).
RAW_PART = 2500

SENSOR_CODEC: Codec[SensorState] = Codec(encode_sensor, decode_sensor, lambda s: s.partition)
DISTRICT_CODEC: Codec[DistrictState] = Codec(
    encode_district, decode_district, lambda s: s.partition
)


def district_topic_name(settings: Settings) -> str:
    """The internal topic carrying sensor windows keyed by district (one per worker group)."""
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
        # Faust's default of 60 s left a killed worker's partitions unread for a minute
        # (the fault matrix, benchmarks/faults.py); heartbeats go every 3 s from their own thread.
        broker_session_timeout=settings.worker.session_timeout_s,
        consumer_max_fetch_size=FETCH_BYTES,
        stream_buffer_maxsize=STREAM_BUFFER,
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
    # Not "district-state": the worker before snapshots kept whole districts there, in JSON.
    district_table = app.Table("district-windows", key_type=bytes, value_type=bytes)

    def table_state(table: Any) -> TableState:
        # Faust's own producer, which Faust starts before the agents and timers run.
        # ``_ensure_producer`` is private (faust-streaming 0.15.3); Faust has no batch send.
        changelog = ChangelogWriter(
            lambda: app.producer._ensure_producer(), table.changelog_topic.get_topic_name()
        )
        return TableState(table, changelog)

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
        tables={"sensor": table_state(sensor_table), "district": table_state(district_table)},
    )
    app.urbanpulse_worker = worker  # for tests and timers
    _add_agents(app, worker, settings, readings_topic, district_topic)
    _add_state_timers(app, worker, settings)
    _add_watch_timers(app, worker, settings)
    return app


def _value_size(event: Any) -> int:
    return len(event.value)


def _acks(stream: Any, events: Sequence[Any]) -> list[Ack]:
    return [partial(stream.ack, event) for event in events]


def _drop_payloads(events: Sequence[Any]) -> None:
    """Let go of processed records' payloads while their acks wait for a snapshot.

    A held ack keeps its Faust event, and the event kept the record's bytes (``event.value``
    and ``event.message.value``, one object) until the snapshot: up to ``MAX_HELD_BYTES`` of
    them resident, 19 MB at the worker's peak with 10,000 sensors (memray). Nothing reads them
    after the run is processed: its completion works from the parsed readings, and an ack
    needs only the record's partition and offset.
    """
    for event in events:
        event.value = None
        event.message.value = None


@asynccontextmanager
async def _crash_on_failure(app: faust.App) -> AsyncIterator[None]:
    """Stop the worker when a batch fails half-way (its live states are then discarded), so
    that its successor starts again from the last snapshot."""
    try:
        yield
    except Exception as err:
        log.exception("a batch failed; stopping the worker to start again from its state")
        await app.crash(err)
        raise


def _add_agents(
    app: faust.App,
    worker: StreamWorker,
    settings: Settings,
    readings_topic: Any,
    district_topic: Any,
) -> None:
    """The two agents: readings → sensors, sensor windows → districts."""
    take = settings.worker.batch_size
    worker.on_failure = app.crash

    @app.agent(readings_topic)  # type: ignore[untyped-decorator]  # faust is untyped
    async def store_readings(stream: Any) -> None:
        """Check, store, aggregate and alert on every reading of the topic."""
        # noack_take: Faust acks nothing itself; the worker releases the acks after the
        # snapshot that covers the records (take_events would ack once the batch is done).
        async for events in stream.noack_take(take, within=settings.worker.batch_seconds):
            for run in split_by_size(events, _value_size, MAX_RUN_BYTES):
                async with _crash_on_failure(app):
                    with worker.in_batch():
                        await worker.start_readings(
                            [(e.message.partition, e.value) for e in run], _acks(stream, run)
                        )
                _drop_payloads(run)
                if worker.sensors.held_bytes > MAX_HELD_BYTES:
                    await worker.save_sensors(aggregates=False)

    @app.agent(district_topic)  # type: ignore[untyped-decorator]
    async def aggregate_districts(stream: Any) -> None:
        """Combine the sensors' window aggregates of each district."""
        async for events in stream.noack_take(take, within=settings.worker.batch_seconds):
            async with _crash_on_failure(app):
                with worker.in_batch():
                    await worker.handle_district(
                        [(e.message.partition, e.key, e.value) for e in events],
                        _acks(stream, events),
                    )
            if worker.districts.held_bytes > MAX_HELD_BYTES:
                await worker.save_districts()


def _add_state_timers(app: faust.App, worker: StreamWorker, settings: Settings) -> None:
    """Snapshots, the states a rebalance takes away, and the stale check over the states."""

    @app.timer(SNAPSHOT_TICK_S)  # type: ignore[untyped-decorator]
    async def save_states() -> None:
        """Snapshot the changed states when due (a rebalance or a stop: ``_App``)."""
        await worker.maybe_snapshot(time.monotonic())

    @app.on_partitions_assigned.connect  # type: ignore[untyped-decorator]
    async def forget_revoked_states(_app: Any, assigned: Iterable[Any], **_kwargs: Any) -> None:
        """Keep the live states of the partitions this worker still owns, and only those."""
        tps = list(assigned)
        worker.keep_partitions(
            sensors={tp.partition for tp in tps if tp.topic == settings.kafka.readings_topic},
            districts={tp.partition for tp in tps if tp.topic == district_topic_name(settings)},
        )

    @app.timer(settings.streams.stale_check_s)  # type: ignore[untyped-decorator]
    async def look_for_stale_sensors() -> None:
        """Open stale-sensor alerts for silent sensors of this worker's partitions."""
        if app.rebalancing or app.in_recovery:
            return  # the states of newly assigned partitions are not all restored yet
        assigned = {
            tp.partition
            for tp in app.consumer.assignment()
            if tp.topic == settings.kafka.readings_topic
        }
        async with _crash_on_failure(app):
            await worker.check_stale(assigned, epoch_us(datetime.now(UTC)))


def _add_watch_timers(app: faust.App, worker: StreamWorker, settings: Settings) -> None:
    """Consumer lag for the metrics, and the stall watchdog."""
    topics = {settings.kafka.readings_topic, district_topic_name(settings)}

    @app.timer(LAG_REFRESH_S)  # type: ignore[untyped-decorator]
    async def refresh_consumer_lag() -> None:
        """Export how far this worker's partitions lag behind (``streams.metrics``)."""
        if app.rebalancing or app.in_recovery:
            worker.metrics.progress.reset()  # offsets stand still then: not a lack of progress
        await refresh_lag(app.consumer, worker.metrics, topics)

    if not settings.worker.stall_restart_s:
        return
    watch = StallWatch(settings.worker.stall_restart_s)

    @app.timer(min(30.0, settings.worker.stall_restart_s / 4))  # type: ignore[untyped-decorator]
    async def watch_for_stalled_partitions() -> None:
        """Stop the worker if an assigned partition has lag that nothing reads."""
        if app.rebalancing or app.in_recovery:
            # Offsets stand still while a rebalance runs or tables are rebuilt from their
            # changelogs, which can take minutes for a big state: that is not a stall.
            watch.reset()
            return
        try:
            await check_partitions(app.consumer, topics, watch, worker.stuck_for)
        except PartitionStalled as err:  # crash: the worker exits non-zero, to be restarted
            await app.crash(err)


class _App(faust.App):  # type: ignore[misc]  # faust is untyped
    """A Faust app whose consumer never commits past a reading it did not process."""

    urbanpulse_worker: StreamWorker

    def _new_transport(self) -> Any:
        transport = super()._new_transport()
        transport.Consumer = SafeCommitConsumer  # see streams.consumer for why
        return transport

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        """Snapshot while Faust waits for every record taken to be acked.

        Faust 0.15.3 waits so before it revokes partitions in a rebalance and when it stops
        (``App._on_partitions_revoked``, ``App._stop_consumer``); the worker acks a record only
        once a snapshot saved the states it changed, and the snapshot timer does not run
        while the app stops. So snapshots are taken here, until the wait is over: the batches
        the agents finish meanwhile are saved and acked at once.
        """
        saving = asyncio.ensure_future(self._snapshot_until_cancelled())
        try:
            await super()._consumer_wait_empty(consumer, logger)
        finally:
            saving.cancel()
            await asyncio.gather(saving, return_exceptions=True)

    async def _snapshot_until_cancelled(self) -> None:
        while True:
            await self.urbanpulse_worker.snapshot()
            await asyncio.sleep(WAIT_EMPTY_SNAPSHOT_S)


class TableState:
    """A Faust table of encoded states: rows recovered from its changelog, snapshots sent
    to that changelog in record batches (``streams.changelog``)."""

    def __init__(self, table: Any, changelog: RowWriter) -> None:
        self._table = table
        self._changelog = changelog

    def pack_rows(self, rows: Iterable[Row]) -> Any:
        """States (None: a tombstone) packed for the changelog partitions of their source
        partitions (record batches), one at a time."""
        return self._changelog.pack(rows)

    async def put_rows(self, packed: Any) -> list[Awaitable[object]]:
        """Send the packed states; the deliveries."""
        return await self._changelog.send(packed)

    def items(self) -> list[tuple[bytes, bytes]]:
        """The rows the table holds (read from the changelog by Faust's recovery)."""
        return [(bytes(k), bytes(v)) for k, v in self._table.data.items() if v is not None]

    def forget(self, key: bytes) -> None:
        """Drop a row from memory once decoded (the live state is the copy kept)."""
        self._table.data.pop(key, None)


class StreamWorker:
    """The adapter around the pure pipeline: live states, I/O, snapshots."""

    def __init__(
        self,
        settings: Settings,
        writer: InfluxWriter,
        registry: RegistryFile,
        topics: dict[str, Any],
        tables: dict[str, StateTable],
    ) -> None:
        self._settings = settings
        self._source = settings.kafka.readings_topic
        self.writer = writer
        self._registry = registry
        self.topics = topics
        self.tables = tables
        self.config = StreamsConfig.from_settings(settings.streams)
        confirm_s = settings.worker.send_confirm_timeout_s
        self.sensors: LiveStates[SensorState] = LiveStates(SENSOR_CODEC, "sensor-state", confirm_s)
        self.districts: LiveStates[DistrictState] = LiveStates(
            DISTRICT_CODEC, "district-windows", confirm_s
        )
        self.received = 0
        self.stored = 0
        self.duplicates = 0
        self.metrics = WorkerMetrics()
        self._batches: dict[object, float] = {}  # batches in progress → start (monotonic)
        self._unconfirmed: set[Awaitable[Any]] = set()  # sends Kafka has not acknowledged yet
        self._last_snapshot = time.monotonic()
        self._label_cache: dict[int, tuple[SensorInfo, SensorLabels]] = {}
        self._completing: asyncio.Future[int] | None = None  # the batch completing, if any
        self.sensors.settle = self._completed
        # Called with the error of a batch that failed while completing in the background
        # (the agents set it to stop the worker, as a batch failing in the agent does).
        self.on_failure: Callable[[BaseException], Awaitable[object]] | None = None
        # Holds the stop task started by a failed completion: a task nobody refers to may be
        # garbage-collected before it runs.
        self._stopping: asyncio.Future[object] | None = None
        self._aggregates = Flush(
            self._write_window_aggregates, partial(mark_written, config=self.config)
        )

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

    # --- readings -------------------------------------------------------------------------

    async def handle_readings(
        self, values: Sequence[tuple[int, bytes]], acks: Iterable[Ack] = ()
    ) -> int:
        """Process one batch of (partition, value) records of the readings topic and wait
        until it is complete (:meth:`start_readings`, then :meth:`settle`); how many stored."""
        await self.start_readings(values, acks)
        return await self.settle()

    async def start_readings(
        self, values: Sequence[tuple[int, bytes]], acks: Iterable[Ack] = ()
    ) -> None:
        """Process one batch of (partition, value) records of the readings topic; its
        completion (the rest of its raw writes, its sends, holding its acks) goes on in the
        background while the next batch is processed.

        One batch completes at a time, in order: this one's completion starts once the
        previous one's is done (its error, if any, is raised here). ``acks`` acknowledge the
        records; they are held once the batch is complete, and released by the snapshot that
        saves the states it changed. Whatever else takes the states' lock waits for the
        completion in progress first (:meth:`settle`, ``LiveStates.settled``): a snapshot
        never saves a state changed by a batch that is not complete.
        """
        size = sum(len(value) for _, value in values)
        async with self.sensors.lock, _or_discard(self.sensors):
            batch = await self._process_readings(values)
            try:
                await self.settle()
            except BaseException:
                batch.writes.cancel()
                raise
            self._completing = asyncio.ensure_future(self._complete(batch, list(acks), size))
            self._completing.add_done_callback(self._report_failure)

    async def settle(self) -> int:
        """Wait until the batch completing (if any) is complete; how many it stored. Raises
        its error (again at every call: the states were discarded, the worker must stop)."""
        completing = self._completing
        if completing is None:
            return 0
        await self._completed()
        stored = completing.result()
        if self._completing is completing:
            self._completing = None
        return stored

    async def _completed(self) -> None:
        """Wait until the batch completing (if any) is complete, without raising its error:
        it discarded the states, which is what a snapshot or stale check waiting here needs
        to know, and the worker is stopping (:meth:`_report_failure`)."""
        completing = self._completing
        if completing is not None and not completing.done():
            await asyncio.wait([completing])  # unlike awaiting it, never cancels it

    def _report_failure(self, completing: asyncio.Future[int]) -> None:
        err = None if completing.cancelled() else completing.exception()
        if err is None or self.on_failure is None:
            return
        log.error("a batch failed while completing; stopping the worker", exc_info=err)
        self._stopping = asyncio.ensure_future(self.on_failure(err))

    async def _complete(self, batch: _Processed, acks: list[Ack], size: int) -> int:
        with self.in_batch():
            async with _or_discard(self.sensors):
                try:
                    stored = await self._complete_readings(batch)
                finally:
                    batch.writes.cancel()
                self.sensors.hold(acks, size)
        return stored

    async def _process_readings(self, values: Sequence[tuple[int, bytes]]) -> _Processed:
        """Parse, screen and process a batch, starting its raw writes as it goes."""
        parsed = parse_records(list(values), self._source)
        readings, duplicates = await self._without_repeats(parsed.readings)
        groups = by_sensor(readings)
        self.sensors.load(self.tables["sensor"], set(parsed.partitions.values()))
        registry = self._registry.current()
        outcome = Outcome(duplicates=duplicates)
        labels: dict[bytes, SensorLabels] = {}
        writes = _RawWrites(self._write_raw, labels)
        try:
            for key, group in groups.items():
                first = group[0]
                info = registry.get((first.tenant, first.sensor_id))
                labels[key] = self._labels_of(info)
                state = self._sensor_state(key, parsed.partitions[key], first)
                process_sensor(state, group, info, self._registry.enabled, self.config, outcome)
                await writes.start_if_due(outcome.stored)
            writes.start_rest(outcome.stored)
        except BaseException:
            writes.cancel()
            raise
        return _Processed(len(values), parsed, outcome, labels, writes)

    async def _complete_readings(self, batch: _Processed) -> int:
        """The rest of a processed batch: raw writes, alerts, sends confirmed; how many
        stored."""
        parsed, outcome, labels = batch.parsed, batch.outcome, batch.labels
        lines = [alert_line(a, self._privacy(a, labels)) for a in outcome.alerts]
        (stored, refused), _ = await asyncio.gather(
            batch.writes.finish(), self._write_aggregates(lines, aggregates=0)
        )
        self.metrics.count_alerts(outcome.alerts)
        await self._send_results(stored, parsed.partitions, labels, outcome)
        letters = parsed.dead_letters + [
            streams_dead_letter(r.to_bytes(), self._source, reason, detail)
            for r, reason, detail in [*outcome.dead_letters, *refused]
        ]
        for letter in letters:
            await self._send("deadletter", None, letter.to_bytes())
        await self._confirm_sends()
        self.stored += len(stored)
        self.metrics.count_readings(stored, len(letters), outcome.duplicates)
        self.duplicates += outcome.duplicates
        self.received += batch.records
        if outcome.duplicates:
            log.info("dropped %d duplicate readings", outcome.duplicates)
        return len(stored)

    def _sensor_state(self, key: bytes, partition: int, first: Reading) -> SensorState:
        state = self.sensors.get(key)
        if state is None:
            state = SensorState(partition, sys.intern(first.tenant), first.sensor_id)
            self.sensors.put(key, state)
        else:
            state.partition = partition
            self.sensors.touch(key)
        return state

    async def _without_repeats(self, readings: list[Reading]) -> tuple[list[Reading], int]:
        """The readings less redelivered ones repeating a stored one (``streams.redelivery``)."""
        screened = screen(readings)
        repeats = screened.repeats
        if screened.lookup:
            await self.settle()  # the batch completing may be writing what this one asks for
            query = stored_ids_query(
                [screened.readings[i] for i in screened.lookup],
                self._settings.influx.raw_bucket,
                timedelta(seconds=self._settings.streams.dedupe_horizon_s),
            )
            if query is not None:
                stored = await asyncio.to_thread(self.writer.stored_ids, query)
                repeats += drop_repeats(screened, stored)
        return screened.readings, repeats

    def _privacy(self, alert: AlertEvent, labels: dict[bytes, SensorLabels]) -> str:
        key = f"{alert.tenant}/{alert.sensor_id}".encode()
        known = labels.get(key)
        return (
            known.privacy
            if known is not None
            else self._labels(alert.tenant, alert.sensor_id).privacy
        )

    async def _send_results(
        self,
        stored: list[Reading],
        partitions: dict[bytes, int],
        labels: dict[bytes, SensorLabels],
        outcome: Outcome,
    ) -> None:
        """Observations (one record per source partition), alerts, district windows."""
        feed: dict[int, list[Reading]] = {}
        for key, run in by_sensor(stored).items():  # the live feed: what InfluxDB accepted
            # The feed cannot see the registry: readings of non-open sensors never enter it.
            if labels[key].privacy == "open":
                feed.setdefault(partitions[key], []).extend(run)
        for partition, readings in feed.items():
            # Keyed by source partition: a sensor's readings stay in order on one partition.
            for value in feed_records(readings):  # a 50-per-message batch can exceed 1 MB
                await self._send("observations", f"readings-{partition}".encode(), value)
        for alert in outcome.alerts:
            await self._send(
                "alerts", f"{alert.tenant}/{alert.sensor_id}".encode(), alert.to_bytes()
            )
        for record in outcome.district_records():
            key = f"{record.tenant}/{record.district}".encode()
            for part in split_record(record):
                await self._send("district", key, encode_record(part))

    # --- districts ------------------------------------------------------------------------

    async def handle_district(
        self, values: Sequence[tuple[int, bytes, bytes]], acks: Iterable[Ack] = ()
    ) -> None:
        """Process one batch of (partition, key, value) records of the district topic."""
        async with self.districts.lock, _or_discard(self.districts):
            await self._handle_district(values)
            self.districts.hold(acks, sum(len(value) for _, _, value in values))

    async def _handle_district(self, values: Sequence[tuple[int, bytes, bytes]]) -> None:
        records = []
        for partition, _key, value in values:
            try:
                records.append((partition, decode_record(value)))
            except msgspec.DecodeError:  # e.g. a reading forwarded by the worker before
                log.warning("a district record not in the current format skipped")
        rows = district_rows(records)
        self.districts.load(self.tables["district"], {p for p, _ in rows.values()})
        outcome = Outcome()
        for key, (partition, updates) in rows.items():
            state = self.districts.get(key)
            if state is None:
                state = new_district_state(key, partition, updates[0][0].unit)
                self.districts.put(key, state)
            else:
                state.partition = partition
                self.districts.touch(key)
            process_district(state, updates, self.config, outcome)
        if outcome.district_late:
            log.info(
                "%d sensor windows came after their district window closed", outcome.district_late
            )
        lines = [aggregate_line(u) for u in outcome.aggregates()]
        await self._write_aggregates(lines, aggregates=len(lines))

    # --- stale sensors --------------------------------------------------------------------

    async def check_stale(self, partitions: set[int], now_us: int) -> None:
        """Open stale alerts for sensors of the given partitions that went silent."""
        async with self.sensors.settled(), _or_discard(self.sensors):
            self.sensors.load(self.tables["sensor"], partitions)
            events, changed = [], []
            registry = self._registry.current()
            self._forget_silent(partitions, now_us)
            for key, state in self.sensors.items(partitions):
                info = registry.get((state.tenant, state.sensor_id))
                if info is not None and info.status == "retired":
                    continue  # taken out of service: its silence is expected (docs/registry.md)
                _, event = check_stale(state, now_us, self.config)
                if event is not None:
                    events.append(event)
                    changed.append(key)
            if not events:
                return
            # Alerts stored and sent before the states that say they were are saved: a crash
            # in between repeats an alert (same point) rather than losing it.
            lines = [alert_line(e, self._labels(e.tenant, e.sensor_id).privacy) for e in events]
            await self._write_aggregates(lines, aggregates=0)
            self.metrics.count_alerts(events)
            for event in events:
                await self._send(
                    "alerts", f"{event.tenant}/{event.sensor_id}".encode(), event.to_bytes()
                )
            await self._confirm_sends()
            for key in changed:
                self.sensors.touch(key)

    def _forget_silent(self, partitions: set[int], now_us: int) -> None:
        """Drop the states of sensors silent for longer than ``forget_silent_after_s``."""
        silent = [
            key
            for key, state in self.sensors.items(partitions)
            if silent_for_good(state, now_us, self.config)
        ]
        for key in silent:
            self.sensors.forget(key)
        if silent:
            log.info(
                "forgot %d sensors silent for more than %.0f days (state bounded; "
                "URBANPULSE_STREAMS__FORGET_SILENT_AFTER_S)",
                len(silent),
                self._settings.streams.forget_silent_after_s / 86_400,
            )

    # --- snapshots ------------------------------------------------------------------------

    async def save_sensors(self, aggregates: bool = True) -> None:
        """Write the window aggregates the batches changed (unless ``aggregates`` is False),
        snapshot the changed sensor states, and release the acks they cover.

        Without the aggregates (an early snapshot, for the held records' memory) the states
        are saved with their windows still marked unwritten, and the next snapshot writes
        them: a crash in between restores those marks. Aggregates are so written every
        ``snapshot_s`` however often held records call for a snapshot (with 10,000 sensors,
        snapshots every 1.5-3 s wrote 1.5-2 aggregate lines per reading).
        """
        snapshot = self.sensors.snapshot(self.tables["sensor"], self._aggregates, write=aggregates)
        if await snapshot:
            self.metrics.snapshot_seconds.labels("sensor").observe(self.sensors.last_snapshot_s)

    async def _write_window_aggregates(self, states: list[tuple[bytes, SensorState]]) -> None:
        """Write the newest aggregate of every window the states changed since last written.

        Once per snapshot rather than per batch: a window a sensor adds to every second is
        written once every few seconds, not every batch (at one reading per batch and sensor,
        three of the four points of each reading were window aggregates). The snapshot runs
        it before it saves the states and acks their records: a record is acked only once the
        aggregates it changed are in InfluxDB, and a crash before that replays it into the
        restored state. Batches run between the parts: each part's lines are built under the
        lock, and written without it.
        """
        pending = iter(states)
        while True:
            async with self.sensors.settled():
                if self.sensors.discarded:
                    return  # a batch failed: the snapshot saves nothing
                lines = self._aggregate_lines(pending)
            if not lines:
                return
            await self._write_aggregates(lines, aggregates=len(lines))

    def _aggregate_lines(self, states: Iterator[tuple[bytes, SensorState]]) -> list[str]:
        """The lines of the next states' unwritten windows, a request's worth (or the rest).

        A request's worth at a time: after a quiet spell every sensor's windows are due at
        once (120,000 lines for 10,000 sensors), and building all the lines first took ~50 MB
        that the process then kept as resident memory.
        """
        lines: list[str] = []
        for key, state in states:
            if self.sensors.get(key) is not state:
                continue  # forgotten, or its partition revoked, since the snapshot's cut
            privacy = self._labels(state.tenant, state.sensor_id).privacy
            lines += [aggregate_line(u, privacy) for u in unwritten_aggregates(state, self.config)]
            if len(lines) >= LINES_PER_REQUEST:
                break
        return lines

    async def save_districts(self) -> None:
        """Snapshot the changed district states; release the acks they cover."""
        if await self.districts.snapshot(self.tables["district"]):
            self.metrics.snapshot_seconds.labels("district").observe(self.districts.last_snapshot_s)

    async def snapshot(self) -> None:
        """Snapshot both tables now."""
        self._last_snapshot = time.monotonic()
        await self.save_sensors()
        await self.save_districts()

    async def maybe_snapshot(self, now: float) -> None:
        """Snapshot when ``snapshot_s`` has passed since the last one; before that, without
        the aggregates, a table whose held records add up to half :data:`MAX_HELD_BYTES`."""
        if now - self._last_snapshot >= self._settings.worker.snapshot_s:
            await self.snapshot()
            return
        if self.sensors.held_bytes > MAX_HELD_BYTES // 2:
            await self.save_sensors(aggregates=False)
        if self.districts.held_bytes > MAX_HELD_BYTES // 2:
            await self.save_districts()

    def keep_partitions(self, sensors: set[int], districts: set[int]) -> None:
        """After a rebalance: forget the live states of partitions no longer assigned."""
        self.sensors.keep_only(sensors)
        self.districts.keep_only(districts)

    # --- output ---------------------------------------------------------------------------

    def _labels(self, tenant: str, sensor_id: str) -> SensorLabels:
        """The registry labels of a sensor (privacy, licence, type) for its points."""
        return self._labels_of(self._registry.current().get((tenant, sensor_id)))

    def _labels_of(self, info: SensorInfo | None) -> SensorLabels:
        if info is None:
            return OPEN
        labels = self._label_cache.get(id(info))
        if labels is None or labels[0] is not info:
            if len(self._label_cache) > 4 * len(self._registry.current()) + 100:
                self._label_cache.clear()  # entries of a registry since reloaded
            labels = self._label_cache[id(info)] = (info, SensorLabels.of(info))
        return labels[1]

    async def _write_aggregates(self, lines: list[str], aggregates: int) -> None:
        """Write aggregate and alert lines (one request: timed as one)."""
        if not lines:
            return
        kind = "aggregate" if aggregates else "alert"
        counts = {"aggregate": aggregates, "alert": len(lines) - aggregates}
        with self.metrics.timed_write(kind, counts):
            await asyncio.to_thread(self.writer.write_lines, lines)

    async def _write_raw(
        self, readings: list[Reading], labels: dict[bytes, SensorLabels]
    ) -> tuple[list[Reading], list[tuple[Reading, str, str]]]:
        """Write raw points: (the readings InfluxDB accepted, the refused with the reason)."""
        if not readings:
            return [], []
        try:
            with self.metrics.timed_write("raw", {"raw": len(readings)}):
                await asyncio.to_thread(self.writer.write, readings, labels)
            return readings, []
        except Exception as err:  # the batch holds a point InfluxDB refuses for good
            if len(readings) == 1:
                return [], [(readings[0], "influx_rejected", str(err))]
            log.warning(
                "InfluxDB refused %d points (%s); halving to find the bad ones", len(readings), err
            )
        half = len(readings) // 2
        first, second = (
            await self._write_raw(readings[:half], labels),
            await self._write_raw(readings[half:], labels),
        )
        return first[0] + second[0], first[1] + second[1]

    async def _send(self, name: str, key: bytes | None, value: bytes) -> None:
        """Send to an output topic (created at start-up, see ``urbanpulse.kafka``)."""
        self._unconfirmed.add(await self.topics[name].send(key=key, value=value))

    async def _confirm_sends(self) -> None:
        """Wait until Kafka has every message sent so far.

        Called at the end of each batch, before its acks are held for the next snapshot: a
        saved state marks its readings as seen, so a replay after a crash drops them as
        duplicates and would never send again a district window, alert or dead letter that
        was still in the producer's buffer. The two agents and the stale timer share the set:
        each waits for all sends outstanding when it asks, its own among them, and only
        acknowledged ones leave the set. Bounded by ``send_confirm_timeout_s``
        (``streams.deliveries``): past it the batch fails and the worker stops.
        """
        pending = set(self._unconfirmed)
        await confirmed(pending, self._settings.worker.send_confirm_timeout_s, "sends")
        self._unconfirmed -= pending


@dataclass
class _Processed:
    """A batch processed (its states changed), its raw points being written: what its
    completion needs."""

    records: int
    parsed: ParsedBatch
    outcome: Outcome
    labels: dict[bytes, SensorLabels]
    writes: _RawWrites


RawWrite = Callable[
    [list[Reading], dict[bytes, SensorLabels]],
    Awaitable[tuple[list[Reading], list[tuple[Reading, str, str]]]],
]


class _RawWrites:
    """A batch's raw points, written in parts while the rest of the batch is processed.

    The worker's event loop computes while InfluxDB works on the other core: waiting for the
    whole batch's write after computing it left the worker idle about a third of the time at
    50 readings per message (docs/performance.md). Every part is written before the batch
    ends, so nothing about what a batch guarantees changes.
    """

    def __init__(self, write: RawWrite, labels: dict[bytes, SensorLabels]) -> None:
        self._write = write
        self._labels = labels  # filled in as sensors are processed, before their part starts
        self._parts: list[asyncio.Task[tuple[list[Reading], list[tuple[Reading, str, str]]]]] = []
        self._started = 0  # readings of ``stored`` whose write has started

    async def start_if_due(self, stored: list[Reading]) -> None:
        """Start writing the stored readings not yet written once there are enough of them."""
        if len(stored) - self._started >= RAW_PART:
            self._start(stored)
            await asyncio.sleep(0)  # let the part's thread start before computing on

    def start_rest(self, stored: list[Reading]) -> None:
        """Start writing the stored readings not yet written (the batch is processed)."""
        self._start(stored)

    async def finish(self) -> tuple[list[Reading], list[tuple[Reading, str, str]]]:
        """Wait for every part: (the readings InfluxDB accepted, the refused with the
        reason)."""
        results = await asyncio.gather(*self._parts)
        self._parts = []
        return [r for ok, _ in results for r in ok], [r for _, bad in results for r in bad]

    def cancel(self) -> None:
        """The batch failed: stop waiting for the parts still running."""
        for part in self._parts:
            part.cancel()

    def _start(self, stored: list[Reading]) -> None:
        part = stored[self._started :]
        self._started = len(stored)
        if part:  # the labels as they are now: the event loop adds more while the part runs
            self._parts.append(asyncio.ensure_future(self._write(part, dict(self._labels))))


@asynccontextmanager
async def _or_discard(states: LiveStates[Any]) -> AsyncIterator[None]:
    """Discard the live states if what changes them fails half-way (then raise)."""
    try:
        yield
    except BaseException:
        states.discard()
        raise


def run(settings: Settings) -> int:
    """Run the worker until SIGINT/SIGTERM; the entry point of ``urbanpulse worker``."""
    set_mmap_threshold()
    ensure_buckets(settings.influx)  # InfluxDB 2.x: buckets and retention; 1.8: nothing
    kafka = settings.kafka
    ensure_topics_apart(  # in a child: librdkafka stays out of the worker's memory
        kafka, [kafka.deadletter_topic, kafka.alerts_topic, kafka.observations_topic]
    )
    app = create_app(settings)
    app.urbanpulse_worker.metrics.serve(settings.metrics.host, settings.metrics.worker_port)
    tune_gc()
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


# Collect the youngest generation after this many new container objects, not Python's 700:
# a batch creates tens of thousands (tuples, lists, structs), most of which die with it, and
# every young collection also walks the states' containers that are still young.
GC_YOUNG_THRESHOLD = 10_000


def tune_gc() -> None:
    """Fewer garbage collections in the worker (measured: docs/performance.md).

    What start-up created (modules, the app) is frozen out of every collection; young
    collections run after :data:`GC_YOUNG_THRESHOLD` allocations. Cycles are still collected,
    a little later.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


class _BoundedStopWorker(faust.Worker):  # type: ignore[misc]  # faust is untyped
    """A ``faust.Worker`` that exits for sure when its stop hangs, after SIGTERM or a crash.

    A SIGTERM that lands during a consumer-group rebalance was seen to leave the worker
    heart-beating to an unavailable group coordinator for 30 s and more, until Compose or
    Kubernetes killed it. After a crash while Kafka answers nothing (a paused broker), the event
    loop closed in 2 s but the consumer's thread waited for its LeaveGroup answer until Kafka
    came back (``tests/integration/test_streams_kafka_silent.py``). Exiting is safe: offsets are
    committed only after InfluxDB accepted the data, so whatever was not committed is read
    again by the next owner of the partition.
    """

    def __init__(self, stop_timeout_s: float, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stop_timeout_s = stop_timeout_s

    def _schedule_shutdown(self, signum: signal.Signals) -> None:
        if not self._signal_stop_time:
            _exit_later(self._stop_timeout_s, code=0)
        super()._schedule_shutdown(signum)

    def on_worker_shutdown(self) -> None:
        """The worker stops without a signal: it crashed (it runs until it is signalled)."""
        super().on_worker_shutdown()
        if not self._signal_stop_time:
            _exit_later(self._stop_timeout_s, code=1)  # non-zero: a supervisor restarts it


def _exit_later(seconds: float, code: int) -> None:
    threading.Thread(target=_exit_after, args=(seconds, code), daemon=True).start()


def _exit_after(seconds: float, code: int) -> None:
    time.sleep(seconds)
    log.warning(
        "stopping took more than %.0f s; exiting now with code %d (uncommitted readings are "
        "read again by the next worker, none is lost)",
        seconds,
        code,
    )
    logging.shutdown()
    os._exit(code)
