"""The MQTT side of ingest: subscribe, decode, write to Kafka, and PUBACK only after Kafka acked.

paho's network thread only puts messages on a bounded queue; the main thread decodes them,
hands readings to Kafka and acks the broker in arrival order once Kafka confirmed. The MQTT 5
receive-maximum we announce equals the queue bound, so the broker never has more than that
many messages unacked with us, and the queue can never overflow.
"""

from __future__ import annotations

import itertools
import logging
import queue
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.acks import AckTracker
from ingest.kafka_sink import DeliveryCallback, KafkaSink
from ingest.metrics import IngestMetrics
from ingest.routing import Decoded, RoutingConfig, dead_letter, decode_message
from ingest.stats import Stats
from urbanpulse.kafka import ensure_topics
from urbanpulse.mqtt import make_client
from urbanpulse.settings import Settings

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps our subscriptions and queue for a week
STATS_EVERY_S = 10.0


@dataclass(frozen=True)
class Incoming:
    """A message taken from the broker, not yet acked."""

    token: int
    mid: int
    qos: int
    topic: str
    payload: bytes
    received_at: datetime
    taken_at: float  # time.monotonic(), for the ack latency


def subscriptions(settings: Settings) -> list[str]:
    """The topic filters to subscribe to, wrapped in a shared subscription when configured."""
    group = settings.mqtt.shared_group
    return [f"$share/{group}/{t}" if group else t for t in settings.mqtt.topics]


class MqttIngestor:
    """Moves messages from MQTT to Kafka with at-least-once delivery."""

    def __init__(self, settings: Settings, sink: KafkaSink) -> None:
        self._settings = settings
        self._routing = RoutingConfig.from_settings(settings)
        self._sink = sink
        self._queue: queue.Queue[Incoming] = queue.Queue(maxsize=settings.mqtt.max_inflight)
        self._tracker = AckTracker()
        self._in_flight: dict[int, Incoming] = {}
        self._tokens = itertools.count()
        self._stopping = threading.Event()
        self.connected = threading.Event()  # set once the broker granted our subscriptions
        self._fatal: str | None = None
        self.stats = Stats()
        self.metrics = IngestMetrics(self.stats, lambda: len(self._tracker))
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        cfg = self._settings.mqtt
        client = make_client(cfg, cfg.client_id, manual_ack=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
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
        filters = subscriptions(self._settings)
        client.subscribe([(f, 1) for f in filters])
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
            next(self._tokens),
            msg.mid,
            msg.qos,
            msg.topic,
            bytes(msg.payload),
            datetime.now(UTC),
            time.monotonic(),
        )
        # Never full while the broker honours our receive-maximum; if it does not, wait
        # rather than drop: back-pressure on the socket is better than a lost reading.
        self._queue.put(incoming)

    # -- the main thread -----------------------------------------------------------------------

    def run(self) -> int:
        """Connect and move messages until :meth:`stop`; return a process exit code."""
        cfg = self._settings.mqtt
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = cfg.max_inflight
        self._client.connect_async(
            cfg.host, cfg.port, keepalive=cfg.keepalive_s, clean_start=False, properties=props
        )
        self._client.loop_start()
        next_stats = time.monotonic() + STATS_EVERY_S
        try:
            while not self._stopping.is_set() and self._fatal is None:
                self._step(timeout_s=0.05)
                if time.monotonic() >= next_stats:
                    log.info(self.stats.line(len(self._tracker)))
                    next_stats = time.monotonic() + STATS_EVERY_S
            self._drain()
        finally:
            self._client.disconnect()
            self._client.loop_stop()
        log.info("stopped; %s", self.stats.line(len(self._tracker)))
        if self._fatal:
            log.error("%s", self._fatal)
            return 1
        return 0

    def stop(self) -> None:
        """Stop taking messages; unacked ones stay with the broker for the next session."""
        self._stopping.set()

    def _step(self, timeout_s: float) -> None:
        try:
            incoming = self._queue.get(timeout=timeout_s)
        except queue.Empty:
            self._sink.poll(0)
            return
        self._handle(incoming)
        self._sink.poll(0)

    def _drain(self, timeout_s: float = 10.0) -> None:
        """Finish what was taken: write queued messages and wait for Kafka's confirmations."""
        while not self._queue.empty():
            self._handle(self._queue.get_nowait())
        left = self._sink.flush(timeout_s)
        if left:
            log.warning("%d writes unconfirmed at shutdown; the broker will redeliver them", left)

    def _handle(self, incoming: Incoming) -> None:
        self.stats.received += 1
        decoded = decode_message(
            incoming.topic,
            incoming.payload,
            incoming.received_at,
            self._settings.mqtt.max_payload_bytes,
            config=self._routing,
        )
        self.stats.dropped_personal += decoded.dropped_personal
        self._in_flight[incoming.token] = incoming
        self._tracker.add(incoming.token, max(len(decoded.readings), 1))
        self._send(incoming, decoded)

    def _send(self, incoming: Incoming, decoded: Decoded) -> None:
        kafka = self._settings.kafka
        if decoded.dead_letter is not None:
            self.stats.dead_letters[decoded.dead_letter.reason] += 1
            log.info(
                "dead letter (%s) from %s: %s",
                decoded.dead_letter.reason,
                incoming.topic,
                decoded.dead_letter.detail,
            )
            self._sink.send(
                kafka.deadletter_topic,
                None,
                decoded.dead_letter.to_bytes(),
                self._on_dead_letter_done(incoming),
            )
            return
        for reading in decoded.readings:
            self._sink.send(
                kafka.readings_topic,
                reading.key,
                reading.to_bytes(),
                self._on_reading_done(incoming),
            )
        self.stats.readings += len(decoded.readings)

    def _on_reading_done(self, incoming: Incoming) -> DeliveryCallback:
        def done(error: str | None) -> None:
            if error is None:
                self._confirm(incoming.token)
                return
            # Kafka refused it for good (too large, not authorised…): keep it as a dead letter.
            letter = dead_letter(
                incoming.topic, incoming.payload, incoming.received_at, "kafka_refused", error
            )
            self.stats.dead_letters[letter.reason] += 1
            self._sink.send(
                self._settings.kafka.deadletter_topic,
                None,
                letter.to_bytes(),
                self._on_dead_letter_done(incoming),
            )

        return done

    def _on_dead_letter_done(self, incoming: Incoming) -> DeliveryCallback:
        def done(error: str | None) -> None:
            if error is None:
                self._confirm(incoming.token)
            else:  # nowhere left to put it: stop unacked, so the broker keeps the message
                self._fatal = f"Kafka refused the dead letter of {incoming.topic}: {error}"

        return done

    def _confirm(self, token: int) -> None:
        for ready in self._tracker.confirm(token):
            message = self._in_flight.pop(ready)
            if message.qos > 0:
                self._client.ack(message.mid, message.qos)
            self.stats.acked += 1
            self.metrics.ack_latency.observe(time.monotonic() - message.taken_at)


def run(settings: Settings) -> int:
    """Run an ingestor until SIGINT/SIGTERM; the entry point of ``urbanpulse ingest``."""
    sink = KafkaSink(settings.kafka, client_id=settings.mqtt.client_id)
    ensure_topics(settings.kafka, [settings.kafka.readings_topic, settings.kafka.deadletter_topic])
    ingestor = MqttIngestor(settings, sink)
    ingestor.metrics.serve(settings.metrics.host, settings.metrics.ingest_port)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: ingestor.stop())
    return ingestor.run()
