"""The MQTT side of ingest: subscribe, decode, write to Kafka, and PUBACK only after Kafka acked.

paho's network thread only stamps each message (a strictly increasing receipt time, the DUP
flag) and puts it on a queue; the main thread takes what is queued as one batch (up to
:data:`MAX_BATCH` messages), decodes each message, writes one Kafka record per partition for
the whole batch (:mod:`ingest.records`) and acks the broker in arrival order once Kafka
confirmed every record holding a message's readings (:mod:`ingest.acks`). The MQTT 5
receive-maximum we announce (``mqtt.max_inflight``) bounds the queue: the broker never has
more than that many messages unacked with us.

Nothing Kafka says stops the ingestor: an outage waits (librdkafka retries without a time
limit), a record Kafka refuses becomes dead letters of its messages, and a dead letter Kafka
refuses is retried with back-off, its message left unacked meanwhile.
"""

from __future__ import annotations

import itertools
import logging
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.acks import AckTracker
from ingest.kafka_sink import DeliveryCallback, KafkaSink
from ingest.metrics import IngestMetrics
from ingest.paho_batching import BatchingClient
from ingest.paho_properties import install as share_property_tables
from ingest.receipt import ReceiptClock
from ingest.records import Message, Record, confirmations, plan_records
from ingest.routing import Decoded, RoutingConfig, dead_letter, decode_message
from ingest.stats import Stats
from urbanpulse.kafka import ensure_topics
from urbanpulse.model import DeadLetter
from urbanpulse.mqtt import make_client
from urbanpulse.settings import Settings

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps our subscriptions and queue for a week
STATS_EVERY_S = 10.0
MAX_BATCH = 1000  # messages decoded and written to Kafka together
KAFKA_WAIT_S = 0.005  # longest wait on Kafka's reports before looking at the queue again
PARTITIONS_EVERY_S = 30.0  # how often the readings topic's partition count is looked up
RETRY_MIN_S, RETRY_MAX_S = 1.0, 30.0  # back-off of a dead letter Kafka refused


@dataclass(slots=True)  # not frozen: paho's thread builds one per message, and frozen is 3x slower
class Incoming:
    """A message taken from the broker, not yet acked (never changed once made)."""

    token: int
    mid: int
    qos: int
    topic: str
    payload: bytes
    received_at: datetime  # strictly increasing per ingestor (ingest.receipt)
    redelivered: bool  # the MQTT DUP flag: the broker sent this message before
    taken_at: float  # time.monotonic(), for the ack latency
    connection: int  # which MQTT connection it came on (see _confirm)


@dataclass(slots=True)
class _Retry:
    """A dead letter to write again, once Kafka may take it."""

    due: float
    delay_s: float
    incoming: Incoming
    value: bytes = field(repr=False)


def subscriptions(settings: Settings) -> list[str]:
    """The topic filters to subscribe to, wrapped in a shared subscription when configured."""
    group = settings.mqtt.shared_group
    return [f"$share/{group}/{t}" if group else t for t in settings.mqtt.topics]


def subscribe_requests(settings: Settings) -> list[tuple[str, SubscribeOptions]]:
    """What the ingestor subscribes with: QoS 1, and no retained messages at subscribe time.

    A retained message is a device's last word kept by the broker, handed to every new
    subscription: it was ingested when it was published, and would be ingested again on every
    (re)subscribe. Live publications still arrive, retained or not.
    """
    options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
    return [(f, options) for f in subscriptions(settings)]


class MqttIngestor:
    """Moves messages from MQTT to Kafka with at-least-once delivery."""

    def __init__(self, settings: Settings, sink: KafkaSink) -> None:
        self._settings = settings
        self._routing = RoutingConfig.from_settings(settings)
        self._sink = sink
        # Bounded by the receive-maximum (run()). SimpleQueue: 0.06 µs a message put and taken,
        # Queue(maxsize) 1.5 (timeit).
        self._queue: queue.SimpleQueue[Incoming] = queue.SimpleQueue()
        self._tracker = AckTracker()
        self._in_flight: dict[int, Incoming] = {}
        self._acks: list[Incoming] = []  # QoS 1 messages released, PUBACKed at a step's end
        self._tokens = itertools.count()
        self._clock = ReceiptClock()
        self._connection = 0  # counts MQTT connections (paho's thread writes, main thread reads)
        self._partitions = 0  # of the readings topic, looked up in run()
        self._retries: list[_Retry] = []
        self._stopping = threading.Event()
        self.connected = threading.Event()  # set once the broker granted our subscriptions
        self.stats = Stats()
        self.metrics = IngestMetrics(self.stats, lambda: len(self._tracker))
        self._client = self._make_client()

    def _make_client(self) -> BatchingClient:
        cfg = self._settings.mqtt
        share_property_tables()  # paho decodes each PUBLISH's properties, 8 µs → 1
        client: BatchingClient = make_client(
            cfg, cfg.client_id, manual_ack=True, client_class=BatchingClient
        )
        # A short ceiling: after a broker restart, every second before we subscribe again is a
        # second in which a shared subscription gets nothing (Mosquitto does not save it).
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    # -- paho's network thread: never blocks for long ---------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("MQTT broker refused the connection: %s", reason)
            return
        self._connection += 1
        filters = subscriptions(self._settings)
        client.subscribe(subscribe_requests(self._settings))
        log.info(
            "connected to MQTT %s:%d, subscribed to %s",
            self._settings.mqtt.host,
            self._settings.mqtt.port,
            ", ".join(filters),
        )

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _mid: int,
        reasons: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("the MQTT broker refused a subscription: %s", ", ".join(refused))
        else:
            self.connected.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("MQTT connection lost (%s); reconnecting", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self._stopping.is_set():
            return  # not acked: the broker redelivers it to our next session
        incoming = Incoming(
            token=next(self._tokens),
            mid=msg.mid,
            qos=msg.qos,
            topic=msg.topic,
            payload=bytes(msg.payload),
            received_at=self._clock.next(),  # only this thread stamps: no lock needed
            redelivered=bool(msg.dup),
            taken_at=time.monotonic(),
            connection=self._connection,
        )
        # At most receive-maximum messages while the broker honours it; one that did not would
        # make the queue grow (memory), never drop a message.
        self._queue.put(incoming)

    # -- the main thread -----------------------------------------------------------------------

    def run(self) -> int:
        """Connect and move messages until :meth:`stop`; return a process exit code."""
        self._partitions = self._wait_for_partitions()
        cfg = self._settings.mqtt
        if cfg.shared_group:
            log.warning(
                "shared subscription group %r: Mosquitto does not save shared subscriptions, "
                "so after a broker restart what devices publish before this ingestor has "
                "subscribed again is lost (docs/reliability.md); one ingestor without a group "
                "keeps a plain persistent subscription that survives restarts",
                cfg.shared_group,
            )
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = cfg.max_inflight
        self._client.connect_async(
            cfg.host, cfg.port, keepalive=cfg.keepalive_s, clean_start=False, properties=props
        )
        self._client.loop_start()
        next_stats = next_lookup = time.monotonic()
        try:
            while not self._stopping.is_set():
                self._step(timeout_s=0.05)
                now = time.monotonic()
                if now >= next_stats:
                    log.info(self.stats.line(len(self._tracker)))
                    next_stats = now + STATS_EVERY_S
                if now >= next_lookup:
                    self._refresh_partitions()
                    next_lookup = now + PARTITIONS_EVERY_S
            self._drain()
        finally:
            self._client.disconnect()
            self._client.loop_stop()
        log.info("stopped; %s", self.stats.line(len(self._tracker)))
        return 0

    def stop(self) -> None:
        """Stop taking messages; unacked ones stay with the broker for the next session."""
        self._stopping.set()

    def _wait_for_partitions(self) -> int:
        """The readings topic's partition count; waits while Kafka cannot say (an outage)."""
        topic = self._settings.kafka.readings_topic
        while (count := self._sink.partitions(topic, timeout_s=5.0)) is None:
            if self._stopping.wait(1.0):
                return 1  # stopping before Kafka answered: nothing will be written
            log.warning("waiting for Kafka to tell the partitions of %s", topic)
        return count

    def _refresh_partitions(self) -> None:
        count = self._sink.partitions(self._settings.kafka.readings_topic, timeout_s=1.0)
        if count is not None and count != self._partitions:
            # Sensors move to other partitions, as with librdkafka's own key partitioning.
            log.warning("readings topic now has %d partitions (was %d)", count, self._partitions)
            self._partitions = count

    def _step(self, timeout_s: float) -> None:
        if len(self._tracker):
            # Records in flight: wait on Kafka's delivery reports, not on the queue, so that
            # PUBACKs leave (and the broker sends more) as soon as Kafka confirms.
            batch = self._take(0)
            if not batch:
                self._sink.poll(KAFKA_WAIT_S)
        else:
            batch = self._take(timeout_s)
        if batch:
            self._handle(batch)
        self._sink.poll(0)
        self._send_acks()
        if self._retries:
            self._retry_due()

    def _take(self, timeout_s: float) -> list[Incoming]:
        """What is queued (up to MAX_BATCH messages), waiting up to ``timeout_s`` for the first."""
        try:
            first = self._queue.get(timeout=timeout_s) if timeout_s else self._queue.get_nowait()
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _drain(self, timeout_s: float = 10.0) -> None:
        """Finish what was taken: write queued messages and wait for Kafka's confirmations."""
        while batch := self._take(0):
            self._handle(batch)
        left = self._sink.flush(timeout_s)
        self._send_acks()
        if left or self._retries:
            log.warning(
                "%d records unconfirmed at shutdown; the broker will redeliver their messages",
                left + len(self._retries),
            )

    def _handle(self, batch: list[Incoming]) -> None:
        """Decode a batch of messages, register what each waits for, and write it all."""
        decoded = [self._decode(incoming) for incoming in batch]
        records = plan_records(
            [
                Message(incoming.token, out.readings)
                for incoming, out in zip(batch, decoded, strict=True)
            ],
            self._partitions,
        )
        needs = confirmations(records)
        for incoming, out in zip(batch, decoded, strict=True):
            self._in_flight[incoming.token] = incoming
            # Decoded holds readings or one dead letter, never both, never neither.
            self._tracker.add(incoming.token, needs[incoming.token] + (out.dead_letter is not None))
        self._release(self._tracker.releasable())
        for incoming, out in zip(batch, decoded, strict=True):
            if out.dead_letter is not None:
                self._send_dead_letter(incoming, out.dead_letter)
        topic = self._settings.kafka.readings_topic
        for record in records:
            self._sink.send(
                topic, record.value, self._on_record_done(record, batch), partition=record.partition
            )
        self.stats.records += len(records)
        self.stats.readings += sum(record.readings for record in records)

    def _decode(self, incoming: Incoming) -> Decoded:
        self.stats.received += 1
        decoded = decode_message(
            incoming.topic,
            incoming.payload,
            incoming.received_at,
            self._settings.mqtt.max_payload_bytes,
            config=self._routing,
            redelivered=incoming.redelivered,
        )
        self.stats.dropped_personal += decoded.dropped_personal
        return decoded

    def _send_dead_letter(self, incoming: Incoming, letter: DeadLetter) -> None:
        self.stats.dead_letters[letter.reason] += 1
        log.info("dead letter (%s) from %s: %s", letter.reason, incoming.topic, letter.detail)
        self._write_dead_letter(incoming, letter.to_bytes(), RETRY_MIN_S)

    def _write_dead_letter(self, incoming: Incoming, value: bytes, delay_s: float) -> None:
        self._sink.send(
            self._settings.kafka.deadletter_topic,
            value,
            self._on_dead_letter_done(incoming, value, delay_s),
        )

    def _on_record_done(self, record: Record, batch: list[Incoming]) -> DeliveryCallback:
        def done(error: str | None) -> None:
            if error is None:
                for token in record.tokens:
                    self._confirm(token)
                return
            # Kafka refused it for good: each of its messages is kept as a dead letter, which
            # confirms that message in the record's place.
            log.error(
                "Kafka refused a record of %d readings (partition %d): %s",
                record.readings,
                record.partition,
                error,
            )
            by_token = {incoming.token: incoming for incoming in batch}
            for token in record.tokens:
                self._refused(by_token[token], record, error)

        return done

    def _refused(self, incoming: Incoming, record: Record, error: str) -> None:
        detail = (
            f"Kafka refused the record of {record.readings} readings (partition "
            f"{record.partition}) that held readings of this message: {error}"
        )
        letter = dead_letter(
            incoming.topic, incoming.payload, incoming.received_at, "kafka_refused", detail
        )
        self.stats.dead_letters[letter.reason] += 1
        self._write_dead_letter(incoming, letter.to_bytes(), RETRY_MIN_S)

    def _on_dead_letter_done(
        self, incoming: Incoming, value: bytes, delay_s: float
    ) -> DeliveryCallback:
        def done(error: str | None) -> None:
            if error is None:
                self._confirm(incoming.token)
                return
            # Nowhere left to put it: keep the message unacked (the broker keeps it) and try
            # again later, as for an outage; later messages wait behind it for their PUBACK.
            log.error(
                "Kafka refused the dead letter of %s (%s); retrying in %.0f s",
                incoming.topic,
                error,
                delay_s,
            )
            due = time.monotonic() + delay_s
            self._retries.append(_Retry(due, min(delay_s * 2, RETRY_MAX_S), incoming, value))

        return done

    def _retry_due(self) -> None:
        now = time.monotonic()
        due = [r for r in self._retries if r.due <= now]
        self._retries = [r for r in self._retries if r.due > now]
        for retry in due:
            self._write_dead_letter(retry.incoming, retry.value, retry.delay_s)

    def _confirm(self, token: int) -> None:
        self._release(self._tracker.confirm(token))

    def _release(self, ready: list[int]) -> None:
        """PUBACK the messages Kafka has confirmed, in arrival order."""
        for token in ready:
            message = self._in_flight.pop(token)
            if message.qos == 1:
                self._acks.append(message)
            elif message.qos == 2 and message.connection == self._connection:
                self._client.ack(message.mid, message.qos)  # not subscribed at QoS 2: never
            self.stats.acked += 1
            self.metrics.ack_latency.observe(time.monotonic() - message.taken_at)

    def _send_acks(self) -> None:
        """The PUBACKs released since the last call, in one write (ingest.paho_batching)."""
        if not self._acks:
            return
        # A message of an earlier connection is not acked: the broker re-sent it on this one
        # (DUP, same packet id), and a PUBACK with its old id could ack another message that
        # reuses the id. Its redelivery is written and acked in its turn. Checked here, just
        # before the write, not when released: a reconnect may come in between.
        connection = self._connection
        self._client.ack_all([m.mid for m in self._acks if m.connection == connection])
        self._acks = []


def run(settings: Settings) -> int:
    """Run an ingestor until SIGINT/SIGTERM; the entry point of ``urbanpulse ingest``."""
    sink = KafkaSink(settings.kafka, client_id=settings.mqtt.client_id)
    ensure_topics(settings.kafka, [settings.kafka.readings_topic, settings.kafka.deadletter_topic])
    ingestor = MqttIngestor(settings, sink)
    ingestor.metrics.serve(settings.metrics.host, settings.metrics.ingest_port)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: ingestor.stop())
    return ingestor.run()
