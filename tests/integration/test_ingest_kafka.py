"""MQTT → ingestor → Kafka on real Mosquitto and Kafka: delivery, dead letters, Kafka outages."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import paho.mqtt.client as mqtt
import pytest
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)
from paho.mqtt.enums import CallbackAPIVersion

from ingest.kafka_sink import KafkaSink
from ingest.mqtt_ingestor import MqttIngestor
from tests.support import (
    KAFKA_HOST,
    KAFKA_PORT,
    MQTT_HOST,
    MQTT_PORT,
    consume,
    consume_readings,
    isolated_settings,
    port_open,
    services,
    unique,
    wait_for,
)
from urbanpulse.kafka import ensure_topics
from urbanpulse.model import DeadLetter
from urbanpulse.settings import Settings


@contextmanager
def running_ingestor(settings: Settings) -> Iterator[MqttIngestor]:
    sink = KafkaSink(settings.kafka, client_id=settings.mqtt.client_id)
    ensure_topics(settings.kafka, [settings.kafka.readings_topic, settings.kafka.deadletter_topic])
    ingestor = MqttIngestor(settings, sink)
    thread = threading.Thread(target=ingestor.run, daemon=True)
    thread.start()
    try:
        yield ingestor
        assert thread.is_alive(), "the ingestor stopped before it was asked to"
    finally:
        ingestor.stop()
        thread.join(timeout=30)


@contextmanager
def publisher() -> Iterator[mqtt.Client]:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=unique("it-pub"), protocol=mqtt.MQTTv5
    )
    client.connect(MQTT_HOST, MQTT_PORT)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def publish_all(client: mqtt.Client, messages: list[tuple[str, bytes]]) -> None:
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(timeout=30)
        assert info.is_published()


def test_a_reading_published_on_mqtt_appears_on_kafka() -> None:
    tenant = unique("town")
    settings = isolated_settings(tenant)
    payload = json.dumps(
        {
            "time": "2026-11-27T10:00:00Z",
            "quantity": "temperature",
            "value": 21.5,
            "unit": "Cel",
            "id": "first",
        }
    ).encode()
    with running_ingestor(settings) as ingestor, publisher() as client:
        wait_for(ingestor.connected.is_set, 30, "the ingestor to subscribe")
        publish_all(client, [(f"urbanpulse/{tenant}/t-1/json", payload)])
        [reading] = consume_readings(settings.kafka.bootstrap, settings.kafka.readings_topic, 1, 30)
        wait_for(lambda: ingestor.stats.acked == 1, 10, "the PUBACK")
    assert (reading.tenant, reading.sensor_id, reading.quantity) == (tenant, "t-1", "temperature")
    assert (reading.value, reading.unit, reading.message_id) == (21.5, "Cel", "first")
    assert reading.observed_at.isoformat() == "2026-11-27T10:00:00+00:00"


def test_a_malformed_message_goes_to_the_dead_letter_topic() -> None:
    tenant = unique("town")
    settings = isolated_settings(tenant)
    with running_ingestor(settings) as ingestor, publisher() as client:
        wait_for(ingestor.connected.is_set, 30, "the ingestor to subscribe")
        publish_all(client, [(f"urbanpulse/{tenant}/t-1/json", b"{oops")])
        [value] = consume(settings.kafka.bootstrap, settings.kafka.deadletter_topic, 1, 30)
        wait_for(lambda: ingestor.stats.acked == 1, 10, "the PUBACK of the dead letter")
    letter = DeadLetter.model_validate_json(value)
    assert letter.reason == "invalid_json"
    assert base64.b64decode(letter.payload_b64) == b"{oops"
    assert letter.topic == f"urbanpulse/{tenant}/t-1/json"


@pytest.mark.timeout(600)
def test_while_kafka_is_down_nothing_is_acked_and_nothing_is_lost() -> None:
    """Stop Kafka, publish, see no PUBACK; start Kafka, see every message arrive."""
    tenant = unique("town")
    settings = isolated_settings(tenant)
    count = 300
    messages = [
        (
            f"urbanpulse/{tenant}/s-{i % 7}/json",
            json.dumps(
                {"quantity": "temperature", "value": i, "unit": "Cel", "id": f"m-{i}"}
            ).encode(),
        )
        for i in range(count)
    ]
    with running_ingestor(settings) as ingestor, publisher() as client:
        wait_for(ingestor.connected.is_set, 30, "the ingestor to subscribe")
        services("stop", "kafka")
        assert not port_open(KAFKA_PORT, KAFKA_HOST), (
            f"Kafka still answers on {KAFKA_HOST}:{KAFKA_PORT}: it was not started by this "
            "checkout's deploy/local/services.sh, so this test cannot stop it (run it with "
            "deploy/local/test.sh, which starts the test services)"
        )
        try:
            publish_all(client, messages)
            wait_for(lambda: ingestor.stats.received > 0, 30, "the ingestor to take messages")
            # Give the ingestor every chance to (wrongly) ack while Kafka is away.
            threading.Event().wait(5)
            assert ingestor.stats.acked == 0
        finally:
            services("start", "kafka")
        readings = consume_readings(
            settings.kafka.bootstrap, settings.kafka.readings_topic, count, 180
        )
        wait_for(lambda: ingestor.stats.acked == count, 60, f"all {count} PUBACKs")
    ids = {r.message_id for r in readings}
    assert ids == {f"m-{i}" for i in range(count)}


@pytest.mark.timeout(120)
def test_a_record_kafka_refuses_becomes_dead_letters_and_the_ingestor_goes_on() -> None:
    """A readings topic that takes records of at most 1,000 bytes refuses a large batch."""
    tenant = unique("town")
    settings = isolated_settings(tenant)
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap})
    small = NewTopic(
        settings.kafka.readings_topic,
        num_partitions=1,
        replication_factor=1,
        config={"max.message.bytes": "1000"},
    )
    admin.create_topics([small])[settings.kafka.readings_topic].result(30)
    big = json.dumps(
        {
            "readings": [
                {"quantity": "temperature", "value": i * 0.37, "unit": "Cel", "id": f"b-{i}"}
                for i in range(300)
            ]
        }
    ).encode()
    after = b'{"quantity": "temperature", "value": 1.5, "unit": "Cel", "id": "after"}'
    topic = f"urbanpulse/{tenant}/t-1/json"
    with running_ingestor(settings) as ingestor, publisher() as client:
        wait_for(ingestor.connected.is_set, 30, "the ingestor to subscribe")
        publish_all(client, [(topic, big)])
        [value] = consume(settings.kafka.bootstrap, settings.kafka.deadletter_topic, 1, 30)
        # Published after: librdkafka would put both records in one batch, refused as a whole.
        publish_all(client, [(topic, after)])
        [reading] = consume_readings(settings.kafka.bootstrap, settings.kafka.readings_topic, 1, 30)
        wait_for(lambda: ingestor.stats.acked == 2, 30, "both PUBACKs")
    letter = DeadLetter.model_validate_json(value)
    assert (letter.reason, letter.topic) == ("kafka_refused", topic)
    assert base64.b64decode(letter.payload_b64) == big
    assert "MSG_SIZE_TOO_LARGE" in letter.detail
    assert reading.message_id == "after"


@pytest.mark.timeout(180)
def test_a_dead_letter_kafka_refuses_waits_and_is_retried_never_exiting() -> None:
    """Nowhere to put a dead letter is an outage: the message stays unacked until it fits."""
    tenant = unique("town")
    settings = isolated_settings(tenant)
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap})
    tiny = NewTopic(
        settings.kafka.deadletter_topic,
        num_partitions=1,
        replication_factor=1,
        config={"max.message.bytes": "200"},
    )
    admin.create_topics([tiny])[settings.kafka.deadletter_topic].result(30)
    topic = f"urbanpulse/{tenant}/t-1/json"
    with running_ingestor(settings) as ingestor, publisher() as client:
        wait_for(ingestor.connected.is_set, 30, "the ingestor to subscribe")
        publish_all(client, [(topic, b"{oops" + b" " * 300)])
        wait_for(lambda: ingestor.stats.received == 1, 30, "the message")
        threading.Event().wait(3)  # refused, retried after 1 s and 2 s: still not acked
        assert ingestor.stats.acked == 0
        larger = ConfigResource(
            ResourceType.TOPIC,
            settings.kafka.deadletter_topic,
            incremental_configs=[
                ConfigEntry(
                    "max.message.bytes",
                    "1000000",
                    incremental_operation=AlterConfigOpType.SET,
                )
            ],
        )
        admin.incremental_alter_configs([larger])[larger].result(30)
        [value] = consume(settings.kafka.bootstrap, settings.kafka.deadletter_topic, 1, 60)
        wait_for(lambda: ingestor.stats.acked == 1, 30, "the PUBACK once the dead letter fit")
    assert DeadLetter.model_validate_json(value).reason == "invalid_json"
