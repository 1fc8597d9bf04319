"""Ingest places a sensor's batch where librdkafka's default partitioner puts its key."""

from __future__ import annotations

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.support import unique
from urbanpulse.settings import Settings
from urbanpulse.wire import partition_of


def test_partition_of_is_librdkafkas_choice_for_the_key() -> None:
    bootstrap = Settings().kafka.bootstrap
    topic = unique("it-partitions")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=7, replication_factor=1)])[topic].result()
    producer = Producer({"bootstrap.servers": bootstrap})
    placed: dict[bytes, int] = {}

    def delivered(err: object, msg: object) -> None:
        assert err is None
        placed[msg.key()] = msg.partition()  # type: ignore[attr-defined]

    keys = [f"town/sensor-{i}".encode() for i in range(200)]
    for key in keys:
        producer.produce(topic, key=key, value=b"x", on_delivery=delivered)
    assert producer.flush(30) == 0
    assert len(set(placed.values())) == 7  # the keys spread: the check below means something
    assert placed == {key: partition_of(key, 7) for key in keys}
