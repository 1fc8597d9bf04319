"""The live feed ``/v1/stream``: Server-Sent Events of the readings the worker stored.

The stream worker publishes every reading InfluxDB accepted to the observations topic
(``URBANPULSE_KAFKA__OBSERVATIONS_TOPIC``), many per record (``urbanpulse.wire``). Each API
process runs one Kafka consumer on it (:class:`KafkaFeed`, no consumer group, starting at the
end) and fans the readings out to its clients through a :class:`Hub`:

* :class:`StreamFilter` (pure) says which readings a client asked for: tenant, sensors,
  quantity, box, and never anything but open quantities.
* :class:`Subscription` is one client's bounded queue. The hub never waits for a client: when
  a client's queue is full its oldest reading is dropped and counted, and the client is told
  how many it missed (event ``skipped``) before the next reading. The data is not lost: it is
  in InfluxDB and the observations endpoints.
* :func:`sse_message` frames readings and notices as SSE (sse-starlette does the encoding,
  the heartbeats and the disconnect handling).

The consumer starts with the first client (so an API nobody streams from never needs Kafka)
and stops when the app shuts down.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
from aiokafka import AIOKafkaConsumer
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import StringConstraints
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from api.filters import BBox
from api.formats import Observation, row_dict
from api.http import PROBLEM_MEDIA_TYPE
from api.params import id_list, parse_bbox
from api.privacy import OPEN_QUANTITIES, require_open
from urbanpulse.feed import FeedRun, decode_feed, runs_of
from urbanpulse.kafka import aiokafka_config
from urbanpulse.model import ID_PATTERN, QUANTITY_PATTERN, Reading
from urbanpulse.settings import ApiSettings, KafkaSettings
from urbanpulse.wire import decode_record

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0  # the first client waits at most this for the consumer to be in place
SEND_TIMEOUT_S = 30.0  # a client that takes nothing for this long (TCP buffer full) is closed
RETRY_MS = 3000  # EventSource reconnects after this long when the connection drops
SHUTDOWN_GRACE_S = 2.0  # streams get this long to end cleanly when the server stops
SEP = "\n"  # SSE allows CR, LF or CRLF line ends; LF is what most servers send


# --- what a client asked for (pure) ---------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StreamFilter:
    """The readings one client wants: every given condition must hold."""

    tenant: str | None = None
    sensor_ids: frozenset[str] = frozenset()
    quantity: str | None = None
    bbox: BBox | None = None
    allowed: frozenset[str] = frozenset(OPEN_QUANTITIES)  # privacy: open quantities only

    def matches(self, obs: Observation) -> bool:
        """True when the reading may be published and is one the client asked for."""
        if obs.quantity not in self.allowed:
            return False
        if self.tenant is not None and obs.tenant != self.tenant:
            return False
        if self.sensor_ids and obs.sensor_id not in self.sensor_ids:
            return False
        if self.quantity is not None and obs.quantity != self.quantity:
            return False
        if self.bbox is not None:  # the position the reading reported, as /v1/observations
            if obs.lat is None or obs.lon is None:
                return False
            return self.bbox.contains(lat=obs.lat, lon=obs.lon)
        return True


def stream_filter(
    *,
    tenant: str | None,
    sensor_ids: Iterable[str] | None,
    quantity: str | None,
    bbox: str | None,
    max_sensors: int,
) -> StreamFilter:
    """Check a client's filters; :class:`BadQuery` (:class:`NotPublished`) says what is wrong."""
    require_open(quantity)
    ids = id_list("sensor_id", list(sensor_ids or ()), max_sensors)
    return StreamFilter(
        tenant=tenant, sensor_ids=frozenset(ids), quantity=quantity, bbox=parse_bbox(bbox)
    )


def observation_of(reading: Reading) -> Observation:
    """A stored reading as the API publishes it (the fields of /v1/observations)."""
    return observations_of(runs_of([reading])[0])[0]


def observations_of(run: FeedRun) -> list[Observation]:
    """The readings of a run of the observations topic (``urbanpulse.feed``) as the API
    publishes them (the fields of /v1/observations)."""
    where = run.location
    lat, lon = (where.lat, where.lon) if where else (None, None)
    return [
        Observation(
            time=time,
            tenant=run.tenant,
            sensor_id=run.sensor_id,
            quantity=run.quantity,
            value=value,
            unit=run.unit,
            lat=lat,
            lon=lon,
            quality_flags=list(run.quality_flags),
        )
        for time, value in zip(run.times, run.values, strict=True)
    ]


# --- fan-out (pure, single event loop) ------------------------------------------------------


@dataclass(frozen=True)
class FeedEvent:
    """One reading on its way to clients: its per-process id and its JSON, made once."""

    id: int
    observation: Observation
    data: str


@dataclass(frozen=True)
class Skipped:
    """A notice to a slow client: this many readings were dropped from its queue."""

    count: int


class HubFull(Exception):
    """As many clients as allowed are streaming already."""


class ClientFull(Exception):
    """This client holds as many live streams as one client may."""


@dataclass(eq=False)
class Subscription:
    """One client's bounded queue: when full, the oldest reading makes way and is counted."""

    filter: StreamFilter
    size: int
    client: str = ""  # who holds it (address or key fingerprint): the per-client limit
    skipped: int = 0
    ended: bool = False
    _queue: asyncio.Queue[FeedEvent | None] = field(init=False)  # None: the end

    def __post_init__(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.size)

    def offer(self, event: FeedEvent) -> None:
        """Queue a reading without ever waiting: drop the oldest one when full."""
        if self.ended:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.skipped += 1
        self._queue.put_nowait(event)

    def pending(self) -> int:
        """Readings queued and not yet taken."""
        return self._queue.qsize()

    def end(self) -> None:
        """Wake the reader with the end of the stream (server shutdown)."""
        if not self.ended:
            self.ended = True
            if self._queue.full():
                self._queue.get_nowait()
            self._queue.put_nowait(None)

    async def next(self) -> FeedEvent | Skipped | None:
        """The next thing to send: the count of dropped readings, if any, then readings; None
        once the stream has ended."""
        if self.skipped and not self.ended:
            notice, self.skipped = Skipped(self.skipped), 0
            return notice
        return await self._queue.get()


class Hub:
    """Offers each published reading to every subscription that wants it; never blocks.

    Bounded twice: at most ``max_subscribers`` subscriptions in all, and at most
    ``per_client`` of them held by one client, so one client cannot take every slot.
    """

    def __init__(self, max_subscribers: int, buffer: int, *, per_client: int = 0) -> None:
        self._max = max_subscribers
        self._per_client = per_client or max_subscribers
        self._buffer = buffer
        self._subscriptions: set[Subscription] = set()
        self._held: dict[str, int] = {}  # client -> streams it holds (no entry at 0)
        self.last_id = 0

    def __len__(self) -> int:
        return len(self._subscriptions)

    def held_by(self, client: str) -> int:
        """How many live streams ``client`` holds now."""
        return self._held.get(client, 0)

    def subscribe(self, flt: StreamFilter, client: str = "") -> Subscription:
        """A new subscription of ``client``: :class:`HubFull` when every slot is taken,
        :class:`ClientFull` when that client holds its share already."""
        if len(self._subscriptions) >= self._max:
            raise HubFull(f"at most {self._max} live streams at once; try again later")
        if self.held_by(client) >= self._per_client:
            raise ClientFull(f"at most {self._per_client} live streams per client; close one first")
        sub = Subscription(flt, self._buffer, client)
        self._subscriptions.add(sub)
        self._held[client] = self.held_by(client) + 1
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a subscription (idempotent)."""
        if sub in self._subscriptions:
            self._subscriptions.discard(sub)
            left = self._held.pop(sub.client) - 1
            if left:
                self._held[sub.client] = left

    def publish(self, obs: Observation) -> int:
        """Number the reading and queue it for every matching subscription; how many got it."""
        self.last_id += 1
        wanted = [s for s in self._subscriptions if s.filter.matches(obs)]
        if wanted:
            data = json.dumps(row_dict(obs), separators=(",", ":"), allow_nan=False)
            event = FeedEvent(self.last_id, obs, data)
            for sub in wanted:
                sub.offer(event)
        return len(wanted)


# --- SSE framing (pure) ---------------------------------------------------------------------


def sse_message(item: FeedEvent | Skipped) -> ServerSentEvent:
    """A reading as event ``reading`` (id = per-process sequence), a gap as event ``skipped``."""
    if isinstance(item, Skipped):
        return ServerSentEvent(data=json.dumps({"skipped": item.count}), event="skipped", sep=SEP)
    return ServerSentEvent(data=item.data, event="reading", id=str(item.id), sep=SEP)


def opening_message() -> ServerSentEvent:
    """The first message: tells EventSource how soon to reconnect, and that the feed is live."""
    return ServerSentEvent(comment="live feed of stored readings", retry=RETRY_MS, sep=SEP)


def heartbeat() -> ServerSentEvent:
    """A comment that keeps proxies from closing an idle stream; EventSource ignores it."""
    return ServerSentEvent(comment="heartbeat", sep=SEP)


async def sse_stream(
    hub: Hub, sub: Subscription, shutdown: anyio.Event | None = None
) -> AsyncIterator[ServerSentEvent]:
    """The messages of one client until it goes away or the server shuts down.

    On shutdown the stream ends cleanly (a complete HTTP response, so EventSource reconnects
    to another instance) instead of being cut off; either way the subscription ends.
    """
    watch = asyncio.create_task(_end_on(shutdown, sub)) if shutdown is not None else None
    try:
        yield opening_message()
        while (item := await sub.next()) is not None:
            yield sse_message(item)
    finally:
        hub.unsubscribe(sub)
        if watch is not None:
            watch.cancel()


async def _end_on(shutdown: anyio.Event, sub: Subscription) -> None:
    await shutdown.wait()
    sub.end()


# --- the Kafka consumer (adapter) -----------------------------------------------------------


class FeedUnavailable(Exception):
    """The observations topic cannot be read (Kafka down)."""


class KafkaFeed:
    """One consumer of the observations topic per process, feeding the hub.

    No consumer group: each API process reads every partition, from the end (a live view has
    no history to catch up on and no offsets to commit).
    """

    def __init__(self, settings: KafkaSettings, hub: Hub) -> None:
        self._settings = settings
        self.hub = hub
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None
        self.undecodable = 0

    @property
    def running(self) -> bool:
        """True while the consumer task runs."""
        return self._task is not None and not self._task.done()

    async def ensure_started(self) -> None:
        """Start the consumer if it is not running; return once it reads from the end."""
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self.running:
                return
            await self._stop()  # a consumer whose task ended (should not happen) is replaced
            consumer = AIOKafkaConsumer(
                **aiokafka_config(self._settings),
                group_id=None,
                auto_offset_reset="latest",
                enable_auto_commit=False,
            )
            try:
                await asyncio.wait_for(consumer.start(), START_TIMEOUT_S)
                consumer.subscribe([self._settings.observations_topic])
                await asyncio.wait_for(_positioned(consumer), START_TIMEOUT_S)
            except Exception as err:  # Kafka down or unreachable: a 503 for this client
                await consumer.stop()
                raise FeedUnavailable(str(err) or type(err).__name__) from err
            self._consumer = consumer
            self._task = asyncio.create_task(self._run(consumer), name="live-feed")
            log.info("live feed reading %s", self._settings.observations_topic)

    async def close(self) -> None:
        """Stop the consumer (app shutdown)."""
        if self._consumer is not None:
            await self._stop()
            log.info("live feed stopped")

    async def _stop(self) -> None:
        task, consumer = self._task, self._consumer
        self._task = self._consumer = None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if consumer is not None:
            await consumer.stop()

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # aiokafka reconnects by itself; keep the streams open
                log.warning(
                    "live feed: reading %s failed: %s", self._settings.observations_topic, err
                )
                await asyncio.sleep(1)
                continue
            for records in batches.values():
                for record in records:
                    self._publish(record.value)

    def _publish(self, value: bytes | None) -> None:
        # A record holds runs of readings (urbanpulse.feed); from an older worker, a batch of
        # whole readings or a single one.
        runs = decode_feed(value or b"")
        if runs is not None:
            for run in runs:
                for obs in observations_of(run):
                    self.hub.publish(obs)
            return
        record = decode_record(value or b"")
        self.undecodable += len(record.refused)  # the worker writes only readings
        for reading in record.readings:
            self.hub.publish(observation_of(reading))


async def _positioned(consumer: AIOKafkaConsumer) -> None:
    """Wait until the consumer has its partitions and their end offsets.

    From then on every reading produced is delivered: a client whose stream has started misses
    nothing published after. A topic that does not exist yet is read once it appears.
    """
    deadline = time.monotonic() + START_TIMEOUT_S / 2
    while not consumer.assignment() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for tp in consumer.assignment():
        await consumer.position(tp)


# --- the route ------------------------------------------------------------------------------

IdItem = Annotated[str, StringConstraints(pattern=ID_PATTERN)]

EXAMPLE_EVENT = (
    ": heartbeat\n\n"
    "event: reading\n"
    "id: 4711\n"
    'data: {"time":"2026-11-20T08:00:00Z","tenant":"demo","sensor_id":"air-002",'
    '"quantity":"pm2_5","value":7.25,"unit":"ug/m3","lat":52.1,"lon":5.1,'
    '"quality_flags":[]}\n\n'
    "event: skipped\n"
    'data: {"skipped": 12}\n\n'
)

STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "an endless `text/event-stream`: event `reading` per stored reading "
        "(data: the JSON of an observation), event `skipped` when this client fell behind, "
        "and a `: heartbeat` comment when idle",
        "content": {"text/event-stream": {"schema": {"type": "string"}, "example": EXAMPLE_EVENT}},
    },
    429: {
        "description": "this client holds as many live streams as one client may "
        "(`URBANPULSE_API__STREAM_MAX_PER_CLIENT`); close one, or retry after `Retry-After`",
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    },
    503: {
        "description": "too many live streams, or the feed cannot be read; retry later",
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    },
}


def stream_router(feed: KafkaFeed, api: ApiSettings) -> APIRouter:
    """The ``/v1/stream`` route, served from ``feed``."""
    router = APIRouter()

    @router.get(
        "/v1/stream",
        tags=["live"],
        response_class=EventSourceResponse,
        responses=STREAM_RESPONSES,
    )
    async def stream(
        request: Request,
        sensor_id: Annotated[
            list[IdItem] | None,
            Query(description="only these sensors (repeat the parameter for several)"),
        ] = None,
        quantity: Annotated[
            str | None,
            Query(pattern=QUANTITY_PATTERN, description="only this quantity", examples=["pm2_5"]),
        ] = None,
        tenant: Annotated[
            str | None,
            Query(pattern=ID_PATTERN, description="only this tenant", examples=["demo"]),
        ] = None,
        bbox: Annotated[
            str | None,
            Query(
                description="only readings that reported a position in this box: "
                "`west,south,east,north` in degrees (WGS 84)",
                examples=["5.0,52.0,5.2,52.2"],
                max_length=200,
            ),
        ] = None,
    ) -> EventSourceResponse:
        """Readings as they are stored, as Server-Sent Events (a live view, no history).

        Each `reading` event carries the same JSON as a row of `/v1/observations`; its `id`
        grows through the life of the API process. Only open quantities are sent. A client
        too slow to keep up loses its oldest queued readings and gets a `skipped` event with
        their count (they are in `/v1/observations`). Idle streams get a `: heartbeat`
        comment every `URBANPULSE_API__STREAM_HEARTBEAT_S` seconds. Reconnecting does not
        replay what was missed: ask `/v1/observations` with `from` for the gap.
        """
        # A bad filter raises BadQuery (a 400 problem; NotPublished a 404) before any stream.
        flt = stream_filter(
            tenant=tenant,
            sensor_ids=sensor_id,
            quantity=quantity,
            bbox=bbox,
            max_sensors=api.max_sensors_per_query,
        )
        try:
            sub = feed.hub.subscribe(flt, _client_of(request))
        except ClientFull as err:
            raise HTTPException(429, str(err), headers={"Retry-After": "30"}) from None
        except HubFull as err:
            raise HTTPException(503, str(err), headers={"Retry-After": "30"}) from None
        try:
            await feed.ensure_started()
        except FeedUnavailable as err:
            feed.hub.unsubscribe(sub)
            log.warning("live feed unavailable: %s", err)
            detail = "the live feed cannot be read right now; try again shortly"
            raise HTTPException(503, detail, headers={"Retry-After": "10"}) from None
        shutdown = anyio.Event()  # set by sse-starlette when uvicorn is told to stop
        return EventSourceResponse(
            sse_stream(feed.hub, sub, shutdown),
            shutdown_event=shutdown,
            shutdown_grace_period=SHUTDOWN_GRACE_S,
            ping=api.stream_heartbeat_s,
            sep=SEP,
            ping_message_factory=heartbeat,
            send_timeout=SEND_TIMEOUT_S,
            # also when the stream never started (client gone before the first byte)
            background=BackgroundTask(feed.hub.unsubscribe, sub),
        )

    return router


def _client_of(request: Request) -> str:
    """Who holds a stream: the rate limiter's client (API key fingerprint or address)."""
    client = getattr(request.state, "client", None)
    if isinstance(client, str):
        return client
    return f"ip:{request.client.host}" if request.client else "unknown"
