"""MQTT → ingestor → Kafka on real Mosquitto and Kafka: delivery, dead letters, Kafka outages."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.kafka_sink import KafkaSink
from ingest.mqtt_ingestor import MqttIngestor
from tests.support import (
    KAFKA_HOST,
    KAFKA_PORT,
    MQTT_HOST,
    MQTT_PORT,
    consume,
    isolated_settings,
    port_open,
    services,
    unique,
    wait_for,
)
from urbanpulse.kafka import ensure_topics
from urbanpulse.model import DeadLetter, Reading
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
        [value] = consume(settings.kafka.bootstrap, settings.kafka.readings_topic, 1, 30)
        wait_for(lambda: ingestor.stats.acked == 1, 10, "the PUBACK")
    reading = Reading.from_bytes(value)
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
        values = consume(settings.kafka.bootstrap, settings.kafka.readings_topic, count, 180)
        wait_for(lambda: ingestor.stats.acked == count, 60, f"all {count} PUBACKs")
    ids = {Reading.from_bytes(v).message_id for v in values}
    assert ids == {f"m-{i}" for i in range(count)}
