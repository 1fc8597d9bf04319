"""The platform's Kafka topics in one table, and the one way they are created (adapter).

Every topic a component writes to is listed by :func:`platform_topics`, with the settings it
needs. :func:`ensure_topics` creates the missing ones with Kafka's admin API, which treats
"already exists" as success, so components starting together do not race (Faust's lazy
``maybe_declare`` from two workers at once was seen to hang one of them on Kafka 4). It waits
for a Kafka that is still starting, retrying with back-off.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from tenacity import (
    RetryError,
    before_sleep_log,
    retry,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from urbanpulse.settings import KafkaSettings

log = logging.getLogger(__name__)

# The observations topic feeds a live view (/v1/stream) that starts at the end; every reading
# in it is also in InfluxDB, so a day of history is plenty and keeps Kafka's disk small.
OBSERVATIONS_RETENTION_MS = 24 * 3600 * 1000


@dataclass(frozen=True, kw_only=True)
class TopicSpec:
    """One topic the platform writes to, and the topic configuration it is created with."""

    name: str
    purpose: str
    config: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def platform_topics(settings: KafkaSettings) -> tuple[TopicSpec, ...]:
    """Every topic of the platform (Faust's own internal topics aside)."""
    return (
        TopicSpec(name=settings.readings_topic, purpose="canonical readings, keyed by sensor"),
        TopicSpec(name=settings.deadletter_topic, purpose="refused messages with reasons"),
        TopicSpec(name=settings.alerts_topic, purpose="alert episodes"),
        TopicSpec(
            name=settings.observations_topic,
            purpose="stored readings: the live feed /v1/stream",
            config=MappingProxyType({"retention.ms": str(OBSERVATIONS_RETENTION_MS)}),
        ),
    )


def client_config(settings: KafkaSettings) -> dict[str, str]:
    """The librdkafka settings every Kafka client of the platform starts from."""
    return {"bootstrap.servers": settings.bootstrap}


def ensure_topics(
    settings: KafkaSettings, names: Iterable[str] | None = None, *, wait_s: float = 60.0
) -> None:
    """Create the platform's topics that are missing (``names``: only those), waiting for Kafka.

    Raises RuntimeError when Kafka did not answer within ``wait_s``.
    """
    wanted = [t for t in platform_topics(settings) if names is None or t.name in set(names)]
    unknown = set(names or ()) - {t.name for t in wanted}
    if unknown:
        raise ValueError(f"not a platform topic: {', '.join(sorted(unknown))}")
    admin = AdminClient(client_config(settings))

    @retry(
        retry=retry_if_exception_type(KafkaException),
        wait=wait_exponential(multiplier=0.5, max=5),
        stop=stop_after_delay(wait_s),
        before_sleep=before_sleep_log(log, logging.WARNING),
    )
    def attempt() -> None:
        _create_missing(admin, wanted, settings)

    try:
        attempt()
    except RetryError as err:
        raise RuntimeError(
            f"Kafka at {settings.bootstrap} did not answer within {wait_s:.0f} s: "
            f"{err.last_attempt.exception()}"
        ) from None


def _create_missing(admin: AdminClient, wanted: list[TopicSpec], settings: KafkaSettings) -> None:
    existing = set(admin.list_topics(timeout=5).topics)
    new = [
        NewTopic(
            t.name,
            num_partitions=settings.partitions,
            replication_factor=settings.replication,
            config=dict(t.config),
        )
        for t in wanted
        if t.name not in existing
    ]
    for name, future in (admin.create_topics(new, operation_timeout=10) if new else {}).items():
        try:
            future.result(timeout=30)
            log.info("created Kafka topic %s (%d partitions)", name, settings.partitions)
        except KafkaException as err:
            if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
