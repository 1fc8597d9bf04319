"""The platform's Kafka topics in one table, and the one way they are created (adapter).

Every topic a component writes to is listed by :func:`platform_topics`, with the settings it
needs. :func:`ensure_topics` creates the missing ones with Kafka's admin API, which treats
"already exists" as success, so components starting together do not race (Faust's lazy
``maybe_declare`` from two workers at once was seen to hang one of them on Kafka 4). It waits
for a Kafka that is still starting, retrying with back-off, but not for one that refuses the
platform's credentials or certificates: that is a setting to fix, said at once
(:class:`KafkaRefused`; the process's supervisor restarts it with its own back-off).

The stream worker does not otherwise use librdkafka (Faust talks to Kafka with aiokafka), so it
creates its topics in a child process (:func:`ensure_topics_apart`) and never loads
confluent-kafka: 3 MB of its resident memory, 7 MB once an admin client has run (measured
without a broker; docs/performance.md). Hence confluent-kafka is imported where it is used.

How a client connects (``URBANPULSE_KAFKA__SECURITY_PROTOCOL``, SASL, TLS) is decided here
once for each client library: :func:`client_config` (confluent-kafka: ingest, admin, the API's
dead-letter counts, ``urbanpulse status``), :func:`aiokafka_config` (the API's live feed) and
:func:`faust_credentials` (the stream worker).
"""

from __future__ import annotations

import logging
import multiprocessing
import ssl
import sys
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from tenacity import (
    RetryError,
    before_sleep_log,
    retry,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from urbanpulse.settings import KafkaSettings

if TYPE_CHECKING:
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient
    from faust.auth import Credentials

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
    """The librdkafka settings (confluent-kafka) every such client of the platform starts from.

    Without ``ssl.ca.location`` librdkafka probes the usual system CA paths (the wheels link
    OpenSSL statically), as aiokafka's default context loads the system CAs.
    """
    config = {
        "bootstrap.servers": settings.bootstrap,
        "security.protocol": settings.security_protocol,
    }
    if settings.uses_sasl:
        config |= {
            "sasl.mechanism": settings.sasl_mechanism,
            "sasl.username": settings.sasl_username or "",
            "sasl.password": _password(settings),
        }
    if settings.uses_tls:
        files = {
            "ssl.ca.location": settings.ssl_ca_file,
            "ssl.certificate.location": settings.ssl_cert_file,
            "ssl.key.location": settings.ssl_key_file,
        }
        config |= {key: path for key, path in files.items() if path}
    return config


def aiokafka_config(settings: KafkaSettings) -> dict[str, Any]:
    """The keyword arguments of an aiokafka client (``AIOKafkaConsumer(**config, ...)``)."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap,
        "security_protocol": settings.security_protocol,
    }
    if settings.uses_sasl:
        config |= {
            "sasl_mechanism": settings.sasl_mechanism,
            "sasl_plain_username": settings.sasl_username,
            "sasl_plain_password": _password(settings),
        }
    if settings.uses_tls:
        config["ssl_context"] = ssl_context(settings)
    return config


def faust_credentials(settings: KafkaSettings) -> Credentials | None:
    """``faust.App(broker_credentials=...)``: the same security for the stream worker.

    Faust hands these to aiokafka for its consumer, producer and topic creation; None keeps
    PLAINTEXT.
    """
    from faust.auth import SASLCredentials, SSLCredentials

    if settings.uses_sasl:
        return SASLCredentials(
            username=settings.sasl_username,
            password=_password(settings),
            mechanism=settings.sasl_mechanism,
            ssl_context=ssl_context(settings)
            if settings.uses_tls
            else None,  # None: SASL_PLAINTEXT
        )
    if settings.uses_tls:
        return SSLCredentials(ssl_context(settings))
    return None


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext:
    """A TLS context that verifies the brokers (CA file or system CAs) and may present a
    client certificate; what aiokafka's ``create_ssl_context`` builds, from the stdlib."""
    context = ssl.create_default_context(cafile=settings.ssl_ca_file or None)
    if settings.ssl_cert_file:
        context.load_cert_chain(settings.ssl_cert_file, settings.ssl_key_file or None)
    return context


def _password(settings: KafkaSettings) -> str:
    return settings.sasl_password.get_secret_value() if settings.sasl_password else ""


def ensure_topics(
    settings: KafkaSettings, names: Iterable[str] | None = None, *, wait_s: float = 60.0
) -> None:
    """Create the platform's topics that are missing (``names``: only those), waiting for Kafka.

    Raises RuntimeError when Kafka did not answer within ``wait_s``, :class:`KafkaRefused`
    when it refused the platform's credentials or certificates.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    wanted = [t for t in platform_topics(settings) if names is None or t.name in set(names)]
    unknown = set(names or ()) - {t.name for t in wanted}
    if unknown:
        raise ValueError(f"not a platform topic: {', '.join(sorted(unknown))}")
    errors: list[KafkaError] = []
    admin = AdminClient(client_config(settings) | {"error_cb": errors.append})
    # librdkafka's codes for a broker that answered but refused us: wrong SASL credentials or
    # mechanism, a certificate that does not verify. Waiting does not fix either.
    refusals = {KafkaError._AUTHENTICATION, KafkaError._SSL}

    @retry(
        retry=retry_if_exception_type(KafkaException),
        wait=wait_exponential(multiplier=0.5, max=5),
        stop=stop_after_delay(wait_s),
        before_sleep=before_sleep_log(log, logging.WARNING),
    )
    def attempt() -> None:
        try:
            _create_missing(admin, wanted, settings)
        except KafkaException:
            admin.poll(0)  # serves error_cb: librdkafka reports why it could not connect there
            refused = [e for e in errors if e.code() in refusals]
            if refused:
                raise KafkaRefused.of(settings, refused[-1]) from None
            raise

    try:
        attempt()
    except RetryError as err:
        causes = [e for e in errors if e.code() != KafkaError._ALL_BROKERS_DOWN]
        why = f"; last error: {causes[-1].str()}" if causes else ""
        raise RuntimeError(
            f"Kafka at {settings.bootstrap} did not answer within {wait_s:.0f} s: "
            f"{err.last_attempt.exception()}{why}"
        ) from None


def ensure_topics_apart(
    settings: KafkaSettings, names: Iterable[str] | None = None, *, wait_s: float = 60.0
) -> None:
    """:func:`ensure_topics` in a child process forked for it, its error raised here.

    For a process that does not otherwise use librdkafka (the stream worker, at its start):
    this one never loads it. Forked, so the child has this process's modules already (a
    round trip took 12-35 ms). A fork copies only the calling thread, so it is safe only while
    this process has no other thread and no librdkafka client: a child that inherited a
    client hung for good when its garbage collector destroyed it (``rd_kafka_destroy``
    waits for the client's threads; seen in the test suite's process). Elsewhere this runs
    :func:`ensure_topics` here.
    """
    if threading.active_count() > 1 or "confluent_kafka" in sys.modules:
        ensure_topics(settings, names, wait_s=wait_s)
        return
    fork = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=1, mp_context=fork) as child:
        child.submit(
            ensure_topics, settings, None if names is None else list(names), wait_s=wait_s
        ).result()


class KafkaRefused(RuntimeError):
    """Kafka refused the platform's credentials or TLS handshake: a setting to fix."""

    @classmethod
    def of(cls, settings: KafkaSettings, error: KafkaError) -> KafkaRefused:
        """The refusal, said with the settings to check (the message is its only argument,
        so it crosses from :func:`ensure_topics_apart`'s child intact)."""
        return cls(
            f"Kafka at {settings.bootstrap} refused the connection "
            f"({settings.security_protocol}"
            + (
                f", {settings.sasl_mechanism} as {settings.sasl_username!r}"
                if settings.uses_sasl
                else ""
            )
            + f"): {error.str()}. Check URBANPULSE_KAFKA__SECURITY_PROTOCOL and the "
            "__SASL_* / __SSL_* settings (docs/production.md, 'Managed Kafka')"
        )


def _create_missing(admin: AdminClient, wanted: list[TopicSpec], settings: KafkaSettings) -> None:
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic

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
