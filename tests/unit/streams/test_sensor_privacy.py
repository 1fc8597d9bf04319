"""The worker adapter carries the registry's privacy, licence and type to what it writes/sends."""

import asyncio
from pathlib import Path

from streams.app import StreamWorker
from tests.unit.streams.helpers import FakeTable, FakeTopic, FakeWriter, published, reading
from urbanpulse.registry import RegistryFile
from urbanpulse.settings import Settings, StreamsSettings


def run(tmp_path: Path) -> tuple[FakeWriter, dict[str, FakeTopic]]:
    registry = tmp_path / "sensors.csv"
    registry.write_text(
        "tenant,sensor_id,district,privacy,licence,sensor_type\n"
        "town,air-1,centre,open,CC-BY-4.0,SDS011\n"
        "town,cam-1,centre,personal,,counter\n"
    )
    settings = Settings(streams=StreamsSettings(registry_path=str(registry)))
    writer = FakeWriter()
    topics = {n: FakeTopic() for n in ("deadletter", "alerts", "district", "observations")}
    worker = StreamWorker(
        settings,
        writer,  # type: ignore[arg-type]
        RegistryFile(str(registry), 10),
        dict(topics),
        {"sensor": FakeTable(), "district": FakeTable()},
    )
    values = [reading(sensor_id=s).to_bytes() for s in ("air-1", "cam-1")]

    async def batch_and_snapshot() -> None:
        await worker.handle_readings([(0, v) for v in values])
        await worker.snapshot()  # writes the windows' aggregates

    asyncio.run(batch_and_snapshot())
    return writer, topics


def test_points_are_labelled_and_a_personal_sensor_reaches_no_public_topic(
    tmp_path: Path,
) -> None:
    writer, topics = run(tmp_path)
    assert [r.sensor_id for r in writer.raw] == ["air-1", "cam-1"]
    assert writer.labels[b"town/air-1"].licence == "CC-BY-4.0"
    assert writer.labels[b"town/cam-1"].privacy == "personal"
    cam_aggs = [line for line in writer.aggregates if "sensor_id=cam-1" in line]
    assert cam_aggs and all("privacy=personal" in line for line in cam_aggs)
    feed = published(v for _, v in topics["observations"].sent)
    assert [(r[0], r[1]) for r in feed] == [("town", "air-1")]
    assert len(topics["district"].sent) == 1  # only the open sensor feeds its district


class SlowTopic(FakeTopic):
    """A topic whose deliveries Kafka acknowledges only when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.acks: list[asyncio.Future[None]] = []

    async def send(self, value: bytes, key: bytes | None = None) -> asyncio.Future[None]:
        self.sent.append((key, value))
        self.acks.append(asyncio.get_running_loop().create_future())
        return self.acks[-1]


def worker_for(tmp_path: Path, topics: dict[str, FakeTopic], sensors: FakeTable) -> StreamWorker:
    """A worker of sensor ``town/air-1`` (district centre) on the given fakes."""
    registry = tmp_path / "sensors.csv"
    registry.write_text("tenant,sensor_id,district\ntown,air-1,centre\n")
    return StreamWorker(
        Settings(streams=StreamsSettings(registry_path=str(registry))),
        FakeWriter(),  # type: ignore[arg-type]
        RegistryFile(str(registry), 10),
        {**{n: FakeTopic() for n in ("deadletter", "alerts", "observations")}, **topics},
        {"sensor": sensors, "district": FakeTable()},
    )


def test_a_sensor_state_is_saved_only_once_kafka_has_its_district_reading(
    tmp_path: Path,
) -> None:
    # Saved first, the state would make a replay drop the reading as a duplicate, and a
    # district reading lost in the producer's buffer by a crash would never be sent again.
    district, sensors = SlowTopic(), FakeTable()
    worker = worker_for(tmp_path, {"district": district}, sensors)

    async def scenario() -> None:
        batch = asyncio.create_task(worker.handle_readings([(0, reading().to_bytes())]))
        for _ in range(500):  # the batch runs up to its district send (writes in a thread)
            if district.sent:
                break
            await asyncio.sleep(0.01)
        snapshot = asyncio.create_task(worker.save_sensors())  # the snapshot timer fires
        await asyncio.sleep(0.05)  # room for a state save that would not wait
        assert len(district.sent) == 1 and sensors.data == {}
        district.acks[0].set_result(None)
        await batch
        await snapshot
        assert list(sensors.data) == [b"town/air-1"]

    asyncio.run(scenario())


def test_each_agent_waits_for_its_own_sends_even_when_another_confirms_first(
    tmp_path: Path,
) -> None:
    # The readings agent, the district agent and the stale timer share the worker.
    alerts = SlowTopic()
    worker = worker_for(tmp_path, {"alerts": alerts}, FakeTable())

    async def scenario() -> None:
        await worker._send("alerts", b"a", b"from agent A")
        await worker._send("alerts", b"b", b"from agent B")
        first = asyncio.create_task(worker._confirm_sends())  # A asks first
        await asyncio.sleep(0)
        second = asyncio.create_task(worker._confirm_sends())  # then B
        alerts.acks[0].set_result(None)
        await asyncio.sleep(0.05)
        assert not first.done() and not second.done()  # B's send is not acknowledged yet
        alerts.acks[1].set_result(None)
        await asyncio.gather(first, second)

    asyncio.run(scenario())
