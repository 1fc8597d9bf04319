"""The Kafka side of ingest: an idempotent, acks=all producer with per-message delivery reports."""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import KafkaError, Producer

from urbanpulse.kafka import client_config
from urbanpulse.settings import KafkaSettings

log = logging.getLogger(__name__)

# Called once per message with None on success, or the error text when Kafka refused it for good.
DeliveryCallback = Callable[[str | None], None]


class KafkaSink:
    """Produces to Kafka and reports each write's outcome through a callback.

    Retriable failures (Kafka down, leader moving) are retried inside librdkafka with no time
    limit (``message.timeout.ms=0``): while Kafka is away, writes wait, the ingestor does not
    ack MQTT, and the broker keeps the messages. Only a permanent refusal is reported as an error.
    """

    def __init__(self, settings: KafkaSettings, client_id: str) -> None:
        self._settings = settings
        self._producer = Producer(
            client_config(settings)
            | {
                "client.id": client_id,
                "enable.idempotence": True,
                "acks": "all",
                "message.timeout.ms": 0,
                "linger.ms": 5,
                "compression.type": "lz4",
                "reconnect.backoff.ms": 100,
                "reconnect.backoff.max.ms": 5000,
                "error_cb": _log_client_error,
            }
        )

    def send(self, topic: str, key: bytes | None, value: bytes, done: DeliveryCallback) -> None:
        """Queue one message; ``done`` is called from a later :meth:`poll`."""

        def report(err: KafkaError | None, _msg: object) -> None:
            done(None if err is None else f"{err.name()}: {err.str()}")

        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=report)
                return
            except BufferError:  # librdkafka's local queue is full: let deliveries drain
                self._producer.poll(0.1)

    def poll(self, timeout_s: float) -> None:
        """Serve delivery reports (and so the callbacks) for up to ``timeout_s``."""
        self._producer.poll(timeout_s)

    def flush(self, timeout_s: float) -> int:
        """Wait for outstanding writes; return how many are still not confirmed."""
        return int(self._producer.flush(timeout_s))


def _log_client_error(err: KafkaError) -> None:
    log.warning("kafka: %s", err.str())
