"""Redelivered time-less readings: dropped when they repeat a stored one, and only then."""

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from streams.app import StreamWorker
from streams.quality import epoch_us
from streams.redelivery import drop_repeats, identity, screen, stored_ids_query
from tests.unit.streams.helpers import T0, FakeTable, FakeTopic, FakeWriter, reading
from urbanpulse.model import Reading
from urbanpulse.registry import RegistryFile
from urbanpulse.settings import Settings
from urbanpulse.wire import encode_batch


def timeless(message_id: str, seconds: float, redelivered: bool, **changes: Any) -> Reading:
    """A reading without its own time: observed when received."""
    at = T0 + timedelta(seconds=seconds)
    return reading(
        message_id=message_id, observed_at=at, received_at=at, redelivered=redelivered, **changes
    )


def test_a_redelivery_in_the_same_batch_is_dropped_without_asking_influxdb() -> None:
    first = timeless("m1", 0, False)
    again = timeless("m1", 1, True)  # the broker's re-send: a new receipt time
    screened = screen([first, again])
    assert screened.readings == [first] and screened.repeats == 1 and screened.lookup == []


def test_what_is_looked_up_and_what_is_not() -> None:
    republished = timeless("m1", 0, False)  # the same bytes published again: not a repeat
    redelivered = timeless("m2", 1, True)
    own_time = reading(message_id="m3", redelivered=True)  # its time is its identity
    other_probe = timeless("m2", 2, True, probe="2")
    screened = screen([republished, timeless("m1", 1, False), redelivered, own_time, other_probe])
    assert len(screened.readings) == 5 and screened.repeats == 0
    assert [screened.readings[i] for i in screened.lookup] == [redelivered, other_probe]


def test_stored_at_another_time_is_a_repeat_at_the_same_time_a_replay() -> None:
    redelivered = timeless("m2", 10, True)
    replayed = timeless("m4", 20, True)
    screened = screen([redelivered, replayed])
    stored = {
        identity(redelivered): {epoch_us(T0)},  # the first delivery, received 10 s earlier
        identity(replayed): {epoch_us(replayed.observed_at)},  # itself, before a crash
    }
    assert drop_repeats(screened, stored) == 1
    assert screened.readings == [replayed]


def test_the_query_names_its_sensors_and_ids_as_escaped_literals() -> None:
    odd = timeless('m"1${x}', 0, True, sensor_id='a"b')
    query = stored_ids_query([odd], "urbanpulse/raw", timedelta(hours=2))
    assert query is not None
    assert 'r.sensor_id == "a\\"b"' in query.flux and '"m\\"1\\x24{x}"' in query.flux
    assert query.start == T0 - timedelta(hours=2) and query.stop == T0 + timedelta(hours=2)
    assert stored_ids_query([], "urbanpulse/raw", timedelta(hours=2)) is None


class StoredWriter(FakeWriter):
    """An InfluxDB that holds the first delivery of message m1 of air-1, at T0."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[Any] = []

    def stored_ids(self, query: Any) -> dict[Any, set[int]]:
        self.queries.append(query)
        return {("town", "air-1", None, "pm2_5", "m1"): {epoch_us(T0)}}


def test_the_worker_drops_a_redelivered_repeat_and_keeps_a_republication(tmp_path: Path) -> None:
    writer = StoredWriter()
    worker = StreamWorker(
        Settings(),
        writer,  # type: ignore[arg-type]
        RegistryFile("", 10),
        {n: FakeTopic() for n in ("deadletter", "alerts", "observations", "district")},
        {"sensor": FakeTable(), "district": FakeTable()},
    )
    redelivered = timeless("m1", 30, True)
    republished = timeless("m1", 60, False)
    new = timeless("m9", 90, True)
    asyncio.run(worker.handle_readings([(0, encode_batch([redelivered, republished, new]))]))
    assert [r.observed_at for r in writer.raw] == [republished.observed_at, new.observed_at]
    assert len(writer.queries) == 1 and worker.duplicates == 1  # one query for the batch
