"""Creates the Kafka topics the worker writes to, before Faust starts (adapter).

Done once at start-up with Kafka's admin API, which treats "already exists" as success:
workers starting together do not race. (Faust's lazy ``maybe_declare`` from two workers at
once was seen to hang one of them on Kafka 4.)
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from urbanpulse.settings import KafkaSettings

log = logging.getLogger(__name__)

# The observations topic feeds a live view (/v1/stream) that starts at the end; every reading
# in it is also in InfluxDB, so a day of history is plenty and keeps Kafka's disk small.
OBSERVATIONS_RETENTION_MS = 24 * 3600 * 1000


def ensure_output_topics(settings: KafkaSettings, timeout_s: float = 60.0) -> None:
    """Create the dead-letter, alerts and observations topics if missing (waits for Kafka)."""
    configs = {
        settings.deadletter_topic: {},
        settings.alerts_topic: {},
        settings.observations_topic: {"retention.ms": str(OBSERVATIONS_RETENTION_MS)},
    }
    admin = AdminClient({"bootstrap.servers": settings.bootstrap})
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            existing = set(admin.list_topics(timeout=5).topics)
            wanted = [
                NewTopic(
                    name,
                    num_partitions=settings.partitions,
                    replication_factor=settings.replication,
                    config=config,
                )
                for name, config in configs.items()
                if name not in existing
            ]
            for name, future in (admin.create_topics(wanted) if wanted else {}).items():
                try:
                    future.result(timeout=30)
                    log.info("created Kafka topic %s", name)
                except KafkaException as err:
                    if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise
            return
        except KafkaException as err:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kafka at {settings.bootstrap}: {err}") from err
            log.warning("waiting for Kafka at %s: %s", settings.bootstrap, err)
            time.sleep(2)
