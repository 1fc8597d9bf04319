"""Every Kafka client of the platform on a Kafka that wants SASL or TLS (the test's own broker).

The broker (``tests.integration.secured_kafka``) has SASL_PLAINTEXT, SASL_SSL and mutual-TLS
listeners and a throw-away CA; the shared Kafka on 9092 is not touched. MQTT and InfluxDB are
the shared ones, with this test's own tenant.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError
from confluent_kafka.admin import AdminClient

from api.stream import FeedEvent, Hub, KafkaFeed, StreamFilter, Subscription
from api.web.deadletters import DeadLetterReader, count_letters
from ingest.kafka_sink import KafkaSink
from tests.integration.secured_kafka import SecuredKafka, secured_kafka
from tests.integration.test_ingest_kafka import publish_all, publisher, running_ingestor
from tests.support import REPO, unique, wait_for
from urbanpulse.influx import make_client
from urbanpulse.kafka import KafkaRefused, aiokafka_config, client_config, ensure_topics
from urbanpulse.settings import KafkaSettings, Settings, WebSettings, WorkerSettings
from urbanpulse.status_probe import KafkaFacts, kafka_facts


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    with secured_kafka(tmp_path_factory.mktemp("secured-kafka")) as kafka:
        yield kafka


def own_topics() -> dict[str, object]:
    return {
        "readings_topic": unique("sec-readings"),
        "deadletter_topic": unique("sec-deadletter"),
        "alerts_topic": unique("sec-alerts"),
        "observations_topic": unique("sec-observations"),
        "partitions": 1,
    }


async def read_all(kafka: KafkaSettings, topic: str, count: int) -> list[bytes]:
    """The first ``count`` values of a topic, read with the aiokafka configuration."""
    consumer = AIOKafkaConsumer(
        topic,
        **aiokafka_config(kafka),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while len(values) < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                values.extend(r.value for r in records)
    finally:
        await consumer.stop()
    return values


CONNECTIONS = {
    "SASL_PLAINTEXT, PLAIN": lambda b: b.sasl(**own_topics()),
    "SASL_PLAINTEXT, SCRAM-SHA-256": lambda b: b.sasl(
        sasl_mechanism="SCRAM-SHA-256", **own_topics()
    ),
    "SASL_SSL, SCRAM-SHA-512": lambda b: b.sasl_ssl(sasl_mechanism="SCRAM-SHA-512", **own_topics()),
    "SSL with a client certificate": lambda b: b.mutual_tls(**own_topics()),
}


@pytest.mark.parametrize("connection", CONNECTIONS)
def test_topics_ingest_producer_and_aiokafka_consumer_connect(
    broker: SecuredKafka, connection: str
) -> None:
    kafka = CONNECTIONS[connection](broker)
    ensure_topics(kafka, [kafka.readings_topic, kafka.deadletter_topic], wait_s=60)
    listed = AdminClient(client_config(kafka)).list_topics(timeout=10).topics
    assert {kafka.readings_topic, kafka.deadletter_topic} <= set(listed)

    sink = KafkaSink(kafka, client_id=unique("it-sec-sink"))
    sent = [f"reading-{i}".encode() for i in range(20)]
    outcomes: list[str | None] = []
    for value in sent:
        sink.send(kafka.readings_topic, value, outcomes.append, key=b"sensor-1")
    assert sink.flush(30) == 0
    assert outcomes == [None] * len(sent)

    assert asyncio.run(read_all(kafka, kafka.readings_topic, len(sent))) == sent


def test_wrong_credentials_are_refused_at_once_and_said_clearly(
    broker: SecuredKafka, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = broker.sasl(password="not-the-password", **own_topics())
    started = time.monotonic()
    with pytest.raises(KafkaRefused) as refused:
        ensure_topics(wrong, [wrong.readings_topic], wait_s=60)
    assert time.monotonic() - started < 20  # not the 60 s an unreachable Kafka is waited for
    message = str(refused.value)
    assert "Authentication failed: Invalid username or password" in message
    assert "PLAIN as 'urbanpulse'" in message and "not-the-password" not in message
    assert "URBANPULSE_KAFKA__SECURITY_PROTOCOL" in message

    async def start_consumer() -> None:
        consumer = AIOKafkaConsumer(**aiokafka_config(wrong), group_id=None)
        try:
            await consumer.start()
        finally:
            await consumer.stop()

    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        asyncio.run(start_consumer())
    assert "SaslAuthenticationFailed" in caplog.text


# What `urbanpulse worker` does at its start, in a process of its own: this one has loaded
# librdkafka and has threads, where ensure_topics_apart runs in-process instead of forking.
APART = """
import pickle, sys
from urbanpulse.kafka import KafkaRefused, ensure_topics_apart
kafka, names = pickle.load(sys.stdin.buffer)
try:
    ensure_topics_apart(kafka, names, wait_s=60)
    outcome = "created"
except KafkaRefused as refused:
    outcome = f"refused: {refused}"
assert "confluent_kafka" not in sys.modules, "librdkafka was loaded in this process"
print(outcome)
"""


def topics_apart(kafka: KafkaSettings, names: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", APART],
        input=pickle.dumps((kafka, names)),
        capture_output=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return done.stdout.decode().strip()


def test_the_worker_s_topics_are_made_in_a_child_and_its_refusal_raised_here(
    broker: SecuredKafka,
) -> None:
    """``urbanpulse worker`` creates its topics in a forked child (librdkafka stays out of its
    memory): the topics, and a refusal with its whole message, are as if done in-process."""
    kafka = broker.sasl_ssl(sasl_mechanism="SCRAM-SHA-512", **own_topics())
    assert topics_apart(kafka, [kafka.alerts_topic, kafka.observations_topic]) == "created"
    listed = AdminClient(client_config(kafka)).list_topics(timeout=10).topics
    assert {kafka.alerts_topic, kafka.observations_topic} <= set(listed)

    wrong = broker.sasl(password="not-the-password", **own_topics())
    refused = topics_apart(wrong, [wrong.alerts_topic])
    assert refused.startswith("refused: ") and "Invalid username or password" in refused
    assert "URBANPULSE_KAFKA__SECURITY_PROTOCOL" in refused


def test_ingest_with_wrong_credentials_waits_and_says_why(
    broker: SecuredKafka, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused producer is an outage: nothing is confirmed (MQTT is not acked), nothing is
    dead-lettered, and the log names the cause."""
    wrong = broker.sasl(password="not-the-password", **own_topics())
    sink = KafkaSink(wrong, client_id=unique("it-sec-sink"))
    outcomes: list[str | None] = []
    with caplog.at_level(logging.WARNING, logger="ingest.kafka_sink"):
        sink.send(wrong.readings_topic, b"reading", outcomes.append, key=b"sensor-1")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            sink.poll(0.2)
    assert outcomes == []
    assert "Authentication failed: Invalid username or password" in caplog.text


def test_a_broker_certificate_the_clients_cannot_verify_is_refused(broker: SecuredKafka) -> None:
    unverified = broker.sasl_ssl(ssl_ca_file=None, **own_topics())  # system CAs only
    with pytest.raises(KafkaRefused, match="certificate verify failed"):
        ensure_topics(unverified, [unverified.readings_topic], wait_s=60)


def test_mutual_tls_without_a_client_certificate_is_not_let_in(broker: SecuredKafka) -> None:
    anonymous = broker.mutual_tls(ssl_cert_file=None, ssl_key_file=None, **own_topics())
    with pytest.raises(RuntimeError, match=r"did not answer within 5 s.*bad certificate"):
        ensure_topics(anonymous, [anonymous.readings_topic], wait_s=5)


APP_ID = "URBANPULSE_WORKER__APP_ID"


def caught_up(settings: Settings) -> KafkaFacts | None:
    """What ``urbanpulse status`` finds in Kafka, once the worker group has no lag."""
    found = kafka_facts(settings, timeout_s=5, now=datetime.now(UTC))
    return found if found.lag is not None and found.lag.lag == 0 else None


def worker_env(kafka: KafkaSettings, tmp: Path) -> dict[str, str]:
    """``urbanpulse worker``'s environment for this Kafka section (the settings as variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("URBANPULSE_KAFKA__")}
    for name, value in kafka.model_dump().items():
        if value is not None:
            secret = getattr(value, "get_secret_value", None)
            env[f"URBANPULSE_KAFKA__{name.upper()}"] = str(secret() if secret else value)
    return env | {
        APP_ID: unique("it-sec-worker"),
        "URBANPULSE_WORKER__DATADIR": str(tmp / "worker"),
        "URBANPULSE_WORKER__BATCH_SECONDS": "0.2",
        "URBANPULSE_METRICS__WORKER_PORT": "0",
    }


async def next_reading(sub: Subscription, worker: subprocess.Popen[bytes], log: Path) -> FeedEvent:
    """The first reading of the live feed, failing early if the worker process ends."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"the worker exited with {worker.returncode}:\n{tail}")
        try:
            event = await asyncio.wait_for(sub.next(), 1)
        except TimeoutError:
            continue
        assert isinstance(event, FeedEvent)
        return event
    raise AssertionError("no reading on the live feed within 120 s")


@pytest.mark.timeout(300)
def test_the_platform_runs_on_a_sasl_ssl_kafka(broker: SecuredKafka, tmp_path: Path) -> None:
    """MQTT → ingest → Kafka (SASL_SSL, SCRAM) → worker (Faust) → InfluxDB and the observations
    topic → the API's live feed (aiokafka) and dead-letter counts (confluent-kafka)."""
    tenant = unique("sec")
    kafka = broker.sasl_ssl(sasl_mechanism="SCRAM-SHA-256", **own_topics())
    settings = Settings(
        mqtt=Settings().mqtt.model_copy(
            update={"client_id": unique("it-sec-ingest"), "topics": [f"urbanpulse/{tenant}/+/+"]}
        ),
        kafka=kafka,
    )
    ensure_topics(kafka)  # so that the live feed finds the observations topic at once
    log = tmp_path / "worker.log"
    env = worker_env(kafka, tmp_path)
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "urbanpulse.cli", "worker"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    since = datetime.now(UTC) - timedelta(seconds=5)
    observed = datetime.now(UTC).replace(microsecond=0)
    reading = {
        "time": observed.isoformat(),
        "quantity": "temperature",
        "value": 19.25,
        "unit": "Cel",
    }
    try:
        with running_ingestor(settings) as ingestor, publisher() as client:
            wait_for(ingestor.connected.is_set, 30, "the ingestor to subscribe")

            async def live() -> FeedEvent:
                feed = KafkaFeed(kafka, Hub(max_subscribers=1, buffer=10))
                sub = feed.hub.subscribe(StreamFilter(tenant=tenant))
                await feed.ensure_started()
                try:
                    messages = [
                        (f"urbanpulse/{tenant}/t-1/json", json.dumps(reading).encode()),
                        (f"urbanpulse/{tenant}/t-1/json", b"{oops"),
                    ]
                    await asyncio.to_thread(publish_all, client, messages)
                    return await next_reading(sub, worker, log)
                finally:
                    await feed.close()

            event = asyncio.run(live())
            # the worker made its topics in a child: librdkafka never loaded in it
            assert "confluent_kafka" not in Path(f"/proc/{worker.pid}/maps").read_text()
            # urbanpulse status reads the group's lag and the dead letters over SASL_SSL too
            watched = Settings(kafka=kafka, worker=WorkerSettings(app_id=env[APP_ID]))
            status = wait_for(lambda: caught_up(watched), 60, "no lag in urbanpulse status")
    finally:
        worker.terminate()
        worker.wait(60)
    assert (event.observation.sensor_id, event.observation.value) == ("t-1", 19.25)
    assert status.service.up and status.lag is not None and status.lag.members == 1
    assert status.deadletters == 1

    stored = (
        make_client(settings.influx)
        .query_api()
        .query(
            f'from(bucket: "{settings.influx.raw_bucket}") |> range(start: -1d) '
            f'|> filter(fn: (r) => r.tenant == "{tenant}" and r._field == "value")'
        )
    )
    assert [row.get_value() for table in stored for row in table.records] == [19.25]

    scan = DeadLetterReader(kafka, WebSettings()).read(since)
    [letters] = count_letters(scan.letters, tenant)
    assert (letters.stage, letters.reason, letters.count) == ("ingest", "invalid_json", 1)
    assert "Traceback" not in log.read_text(errors="replace")
