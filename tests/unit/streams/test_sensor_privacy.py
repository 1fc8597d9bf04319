"""The worker adapter carries the registry's privacy, licence and type to what it writes/sends."""

import asyncio
from pathlib import Path
from typing import Any

from streams.app import StreamWorker, TableState
from streams.registry import RegistryFile
from tests.unit.streams.helpers import FakeTopic, FakeWriter, reading
from urbanpulse.settings import Settings, StreamsSettings


class FakeTable:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def send_changelog(self, *args: Any, **kwargs: Any) -> None:
        pass


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
        {"sensor": TableState(FakeTable()), "district": TableState(FakeTable())},
    )
    values = [reading(sensor_id=s).to_bytes() for s in ("air-1", "cam-1")]
    asyncio.run(worker.handle_readings([(0, v) for v in values]))
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
    assert [k for k, _ in topics["observations"].sent] == [b"town/air-1"]
    assert len(topics["district"].sent) == 1  # only the open sensor feeds its district
