"""A redelivered reading without its own time is stored once; a republication is stored again.

A real worker process on real Kafka and InfluxDB. Readings without a time in their payload are
observed when received (``observed_at == received_at``), so a message the broker sends again
(``redelivered``) carries a new time; the worker recognises it by its message id, in the same
batch or in InfluxDB (docs/streams.md, "Identity"). A reading that was not redelivered is never
dropped by its id: the same bytes published twice are two observations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.integration.test_streams_worker import BOOTSTRAP, Scenario
from tests.support import wait_for
from urbanpulse.model import Reading
from urbanpulse.wire import encode_batch


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    running = Scenario(tmp_path)
    try:
        yield running
    finally:
        running.close()


def timeless(tenant: str, message_id: str, at: datetime, redelivered: bool) -> Reading:
    """A reading of sensor s-0 whose payload had no time: observed when received."""
    return Reading(
        tenant=tenant,
        sensor_id="s-0",
        quantity="temperature",
        value=21.5,
        unit="Cel",
        observed_at=at,
        received_at=at,
        source_format="json",
        message_id=message_id,
        derived_id=True,
        redelivered=redelivered,
    )


def produce_records(scenario: Scenario, records: list[list[Reading]]) -> None:
    """Each list as one Kafka record (a batch of readings), keyed by its sensor."""
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True})
    for readings in records:
        producer.produce(scenario.topic, key=readings[0].key, value=encode_batch(readings))
    assert producer.flush(30) == 0


def stored(scenario: Scenario) -> list[tuple[str, datetime]]:
    """(message id, time) of the sensor's raw points."""
    rows = scenario.query("urbanpulse/raw", "reading")
    return sorted((r["message_id"], r["_time"]) for r in rows if r["sensor_id"] == "s-0")


@pytest.mark.timeout(600)
def test_a_redelivery_is_stored_once_and_a_republication_twice(scenario: Scenario) -> None:
    tenant = scenario.tenant
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    first = [timeless(tenant, m, start + timedelta(seconds=i), False) for i, m in enumerate("ab")]
    worker = scenario.start_worker()
    produce_records(scenario, [first])
    wait_for(lambda: (worker.check_alive(), len(stored(scenario)) == 2)[1], 180, "first two")

    later = start + timedelta(minutes=1)
    redelivered_a = timeless(tenant, "a", later, True)  # its first delivery is in InfluxDB
    republished_b = timeless(tenant, "b", later + timedelta(seconds=1), False)  # new bytes
    redelivered_c = timeless(tenant, "c", later + timedelta(seconds=2), True)  # first is lost
    first_d = timeless(tenant, "d", later + timedelta(seconds=3), False)
    redelivered_d = timeless(tenant, "d", later + timedelta(seconds=4), True)  # same record
    produce_records(
        scenario,
        [[redelivered_a, republished_b], [redelivered_c], [first_d, redelivered_d]],
    )
    wait_for(scenario.caught_up, 180, "the worker to commit the second input")
    assert stored(scenario) == [
        ("a", start),
        ("b", start + timedelta(seconds=1)),
        ("b", later + timedelta(seconds=1)),
        ("c", later + timedelta(seconds=2)),
        ("d", later + timedelta(seconds=3)),
    ]
    dropped = re.findall(r"dropped (\d+) duplicate readings", worker.own_log())
    assert sum(map(int, dropped)) == 2  # the redeliveries of a and d
