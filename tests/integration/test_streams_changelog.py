"""Snapshot rows reach a real Kafka changelog whole, in order, across record batches."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streams.changelog import ChangelogWriter, Row
from tests.support import unique
from urbanpulse.settings import Settings


def test_rows_of_many_batches_arrive_once_each_in_partition_order() -> None:
    bootstrap = Settings().kafka.bootstrap
    topic = unique("it-changelog")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result()
    # Rows of 1 kB in batches of at most 4 kB: each partition's rows take many batches.
    rows: list[Row] = [
        (n % 2, f"town/s-{n % 50}".encode(), None if n % 17 == 0 else bytes([n % 256]) * 1000)
        for n in range(400)
    ]

    async def scenario() -> dict[int, list[tuple[bytes, bytes | None]]]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=4096, acks="all")
        await producer.start()
        try:
            writer = ChangelogWriter(lambda: producer, topic)
            deliveries = await writer.send(writer.pack(rows))
            assert len(deliveries) > 50  # many batches, not one per row (400) nor one in all
            await asyncio.wait_for(asyncio.gather(*deliveries), 30)
        finally:
            await producer.stop()
        return await read_back(bootstrap, topic, len(rows))

    got = asyncio.run(scenario())
    for partition in (0, 1):
        assert got[partition] == [(key, value) for p, key, value in rows if p == partition]


async def read_back(
    bootstrap: str, topic: str, count: int
) -> dict[int, list[tuple[bytes, bytes | None]]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in (0, 1)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got: dict[int, list[tuple[bytes, bytes | None]]] = {0: [], 1: []}
        while sum(map(len, got.values())) < count:
            fetched = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            for tp, messages in fetched.items():
                got[tp.partition] += [(m.key, m.value) for m in messages]
        return got
    finally:
        await consumer.stop()
