"""The ingestor's delivery promise under stress: bursts, SIGKILL, and shared subscriptions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.integration.test_ingest_kafka import publisher, running_ingestor
from tests.support import (
    MQTT_HOST,
    MQTT_PORT,
    REPO,
    consume_readings,
    isolated_settings,
    unique,
    wait_for,
)
from urbanpulse.model import Reading
from urbanpulse.settings import Settings


def payload(i: int) -> str:
    return json.dumps({"quantity": "temperature", "value": i, "unit": "Cel", "id": f"m-{i}"})


def dropped_by_broker() -> int:
    """The broker's own count of messages it dropped ($SYS/broker/publish/messages/dropped).

    Mosquitto 2.0 publishes (retained) a publish counter only once it is non-zero: a broker
    that never dropped a message has no ``dropped`` topic at all. So the count is read next
    to ``received``, which every broker that took a publish has: once ``received`` arrived,
    a missing ``dropped`` means 0.
    """
    got: dict[str, int] = {}

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        got[msg.topic.rsplit("/", 1)[1]] = int(msg.payload)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("it-sys"))
    client.on_message = on_message
    client.connect(MQTT_HOST, MQTT_PORT)
    client.subscribe("$SYS/broker/publish/messages/+")
    client.loop_start()
    # A publish of our own, so that ``received`` exists even on a broker just started; it
    # arrives at once (retained) or at the next $SYS interval (5 s).
    client.publish(f"it-sys/{unique('probe')}", b"1", qos=1)
    try:
        wait_for(lambda: "received" in got, 30, "the broker's $SYS publish counters")
        time.sleep(1.0)  # the retained ``dropped``, if any, comes in the same burst
    finally:
        client.disconnect()
        client.loop_stop()
    return got.get("dropped", 0)


def message_ids(readings: list[Reading]) -> Counter[str]:
    return Counter(r.message_id for r in readings)


@pytest.mark.timeout(600)
def test_a_burst_of_50000_qos1_messages_loses_none() -> None:
    count = 50_000
    tenant = unique("burst")
    settings = isolated_settings(tenant)
    dropped_before = dropped_by_broker()
    lines = "\n".join(payload(i) for i in range(count)) + "\n"
    with running_ingestor(settings) as ingestor:
        wait_for(ingestor.connected.is_set, 30, "the ingestor to subscribe")
        started = time.monotonic()
        subprocess.run(
            [
                "mosquitto_pub",
                "-h",
                MQTT_HOST,
                "-p",
                str(MQTT_PORT),
                "-q",
                "1",
                "-l",
                "-t",
                f"urbanpulse/{tenant}/burst-1/json",
            ],
            input=lines.encode(),
            check=True,
            timeout=300,
        )
        published_s = time.monotonic() - started
        readings = consume_readings(
            settings.kafka.bootstrap, settings.kafka.readings_topic, count, 300
        )
        wait_for(lambda: ingestor.stats.acked == count, 60, f"all {count} PUBACKs")
    ids = message_ids(readings)
    print(f"burst: published {count} in {published_s:.1f} s; Kafka holds {len(ids)} distinct")
    assert set(ids) == {f"m-{i}" for i in range(count)}
    assert dropped_by_broker() == dropped_before


@contextmanager
def ingest_process(settings_env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "urbanpulse.cli", "ingest"],
            cwd=REPO,
            env=os.environ | settings_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def env_of(settings: Settings) -> dict[str, str]:
    return {
        "URBANPULSE_MQTT__CLIENT_ID": settings.mqtt.client_id,
        "URBANPULSE_MQTT__TOPICS": json.dumps(settings.mqtt.topics),
        "URBANPULSE_KAFKA__READINGS_TOPIC": settings.kafka.readings_topic,
        "URBANPULSE_KAFKA__DEADLETTER_TOPIC": settings.kafka.deadletter_topic,
        "URBANPULSE_KAFKA__PARTITIONS": str(settings.kafka.partitions),
    }


@pytest.mark.timeout(600)
def test_sigkill_mid_stream_then_restart_loses_nothing(tmp_path: Path) -> None:
    count = 10_000
    tenant = unique("kill")
    settings = isolated_settings(tenant)
    env, log = env_of(settings), tmp_path / "ingest.log"
    topic = f"urbanpulse/{tenant}/k-1/json"
    with publisher() as client:
        with ingest_process(env, log) as first:
            wait_for(lambda: "subscribed to" in log.read_text(), 60, "the first ingestor")
            sender = threading.Thread(
                target=lambda: [
                    client.publish(topic, payload(i), qos=1).wait_for_publish(60)
                    for i in range(count)
                ]
            )
            sender.start()
            # Kill it once a part of the stream is in Kafka, the rest still coming.
            wait_for(
                lambda: (
                    len(
                        consume_readings(
                            settings.kafka.bootstrap, settings.kafka.readings_topic, 2000, 2
                        )
                    )
                    >= 2000
                ),
                120,
                "2,000 readings before the kill",
            )
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        with ingest_process(env, log):
            sender.join(timeout=300)
            # Duplicates are allowed (at-least-once): read until every id is there.
            readings = consume_readings(
                settings.kafka.bootstrap,
                settings.kafka.readings_topic,
                lambda got: len(got) >= count and len(message_ids(got)) == count,
                240,
            )
            ids = message_ids(readings)
    duplicates = sum(n - 1 for n in ids.values())
    print(f"sigkill: {count} sent, {len(ids)} distinct in Kafka, {duplicates} duplicates")
    assert set(ids) == {f"m-{i}" for i in range(count)}


@pytest.mark.timeout(300)
def test_two_ingestors_on_a_shared_subscription_split_the_load() -> None:
    count = 2_000
    tenant = unique("share")
    settings = isolated_settings(tenant)
    group = unique("grp")
    first = settings.model_copy(
        update={
            "mqtt": settings.mqtt.model_copy(
                update={"shared_group": group, "client_id": unique("it-a")}
            )
        }
    )
    second = settings.model_copy(
        update={
            "mqtt": settings.mqtt.model_copy(
                update={"shared_group": group, "client_id": unique("it-b")}
            )
        }
    )
    with running_ingestor(first) as a, running_ingestor(second) as b, publisher() as client:
        wait_for(lambda: a.connected.is_set() and b.connected.is_set(), 30, "both to subscribe")
        infos = [
            client.publish(f"urbanpulse/{tenant}/s-{i % 9}/json", payload(i), qos=1)
            for i in range(count)
        ]
        for info in infos:
            info.wait_for_publish(timeout=60)
        readings = consume_readings(
            settings.kafka.bootstrap, settings.kafka.readings_topic, count, 120
        )
        wait_for(lambda: a.stats.acked + b.stats.acked == count, 60, "all PUBACKs")
    ids = message_ids(readings)
    print(f"shared: ingestor a took {a.stats.received}, b took {b.stats.received}")
    assert set(ids) == {f"m-{i}" for i in range(count)}
    assert sum(ids.values()) == count  # nobody got a message twice
    assert a.stats.received > count // 10 and b.stats.received > count // 10
