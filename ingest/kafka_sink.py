"""The Kafka side of ingest: an idempotent, acks=all producer with per-record delivery reports."""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Producer

from urbanpulse.kafka import client_config
from urbanpulse.settings import KafkaSettings

log = logging.getLogger(__name__)

# Called once per record with None on success, or the error text when Kafka refused it for good.
DeliveryCallback = Callable[[str | None], None]

# A record already holds a batch of readings; linger only lets the records of successive
# batches share a request. Measured (ingest alone, 60,000 messages of 1 reading, 4
# partitions, docs/scale-out.md): linger 0 sent twice the records and cost Kafka 16-19 us of
# CPU a reading against 7-11 with 2 or 5, for no more throughput (~10,000 messages/s either
# way on the loaded 2-core machine); 20 and 50 slowed the acks. batch.size is librdkafka's
# default, written down: a request carries up to two of our largest records (512 kB).
LINGER_MS = 5
BATCH_BYTES = 1_000_000


class KafkaSink:
    """Produces to Kafka and reports each record's outcome through a callback.

    Retriable failures (Kafka down, leader moving) are retried inside librdkafka with no time
    limit (``message.timeout.ms=0``): while Kafka is away, writes wait, the ingestor does not
    ack MQTT, and the broker keeps the messages. Only a permanent refusal is reported as an
    error, also when ``produce`` itself refuses the record (too large, no such partition).
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
                "linger.ms": LINGER_MS,
                "batch.size": BATCH_BYTES,
                "compression.type": "lz4",
                "reconnect.backoff.ms": 100,
                "reconnect.backoff.max.ms": 5000,
                "error_cb": _log_client_error,
            }
        )

    def send(
        self,
        topic: str,
        value: bytes,
        done: DeliveryCallback,
        *,
        key: bytes | None = None,
        partition: int | None = None,
    ) -> None:
        """Queue one record (to ``partition``, else by key); ``done`` is called once, later.

        ``done`` runs from a later :meth:`poll`, or at once if Kafka's client refuses the
        record outright; it never raises out of here, so one record cannot stop the ingestor.
        """

        def report(err: KafkaError | None, _msg: object) -> None:
            done(None if err is None else _describe(err))

        where = {} if partition is None else {"partition": partition}
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=report, **where)
                return
            except BufferError:  # librdkafka's local queue is full: let deliveries drain
                self._producer.poll(0.1)
            except KafkaException as err:  # refused before queuing: it would never be written
                error = err.args[0]
                done(_describe(error) if isinstance(error, KafkaError) else str(err))
                return

    def partitions(self, topic: str, timeout_s: float) -> int | None:
        """The number of partitions of ``topic`` (None when Kafka does not say in time)."""
        try:
            metadata = self._producer.list_topics(topic, timeout=timeout_s)
        except KafkaException:
            return None
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            return None
        return len(found.partitions)

    def poll(self, timeout_s: float) -> None:
        """Serve delivery reports (and so the callbacks) for up to ``timeout_s``."""
        self._producer.poll(timeout_s)

    def flush(self, timeout_s: float) -> int:
        """Wait for outstanding writes; return how many are still not confirmed."""
        return int(self._producer.flush(timeout_s))


def _describe(err: KafkaError) -> str:
    return f"{err.name()}: {err.str()}"


def _log_client_error(err: KafkaError) -> None:
    log.warning("kafka: %s", err.str())
