"""A simulated town sent through the platform's own code into the real InfluxDB, in a test's time.

Each message the simulator would publish is decoded by the ingestor's routing
(``ingest.routing.decode_message``) and handed, as the Kafka values ingest writes, to the stream
worker's adapter (``streams.app.StreamWorker``: the pure pipeline, point building and the real
InfluxDB writer), batch by batch in the order and at the times it would arrive, with the
worker's stale check between batches. Only Kafka is left out (topics and state tables are
in-memory stand-ins; ``test_streams_worker.py`` covers the real ones); the dead letters of
ingest and of the worker are returned, for a test to put on a real topic.

(``test_dashboards_queries.py`` has the same loop, written before this module; it is meant to
use this one, so that a change of the worker's interface is followed in one place.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ingest.routing import RoutingConfig, decode_message
from simulators.engine import fleet_stream
from simulators.faults import FaultInjector, Outgoing
from simulators.formats import Wire
from simulators.interventions import plan_all
from simulators.scenario import Device, Scenario
from streams.app import StreamWorker
from streams.influx_writer import InfluxWriter
from streams.quality import epoch_us
from tests.unit.streams.helpers import FakeTopic, memory_table
from urbanpulse.model import DeadLetter
from urbanpulse.registry import RegistryFile
from urbanpulse.settings import Settings

BATCH = timedelta(minutes=5)  # simulated time per worker batch (and between stale checks)


@dataclass(kw_only=True)
class Delivered:
    """What the town sent (up to the end), and the dead letters ingest and the worker wrote."""

    items: list[Outgoing] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    received: dict[int, datetime] = field(default_factory=dict)  # id(item) → arrival


async def deliver_town(
    settings: Settings,
    scenario: Scenario,
    fleet: Sequence[Device],
    start: datetime,
    end: datetime,
    *,
    timestamps: bool = True,
    arrival: Callable[[Outgoing], datetime] = lambda item: item.due,
) -> Delivered:
    """Send the town's ``[start, end)`` through ingest decoding and the worker into InfluxDB.

    ``timestamps``: Sensor.Community messages carry their time (False: as in real time, the
    ingestor stamps the time of receipt). ``arrival``: when each message reaches ingest (its
    ``received_at``); messages due at or after ``end`` are not sent.
    """
    routing = RoutingConfig.from_settings(settings)
    wire = Wire.of(scenario, timestamps=timestamps)
    injector = FaultInjector(
        scenario.city(),
        wire,
        scenario.faults,
        interventions=plan_all(scenario, list(fleet)),
        run_start=start,
    )
    topics = {n: FakeTopic() for n in ("deadletter", "alerts", "district", "observations")}
    tables = {"sensor": memory_table(), "district": memory_table()}
    registry = RegistryFile(settings.streams.registry_path, settings.streams.registry_reload_s)
    writer = InfluxWriter(settings.influx)
    worker = StreamWorker(settings, writer, registry, dict(topics), tables)
    out = Delivered()

    async def deliver(values: list[bytes], now: datetime) -> None:
        await worker.handle_readings([(0, value) for value in values])
        district, topics["district"].sent = topics["district"].sent, []
        await worker.handle_district([(0, key or b"", value) for key, value in district])
        await worker.check_stale({0}, epoch_us(now))
        await worker.snapshot()  # as the worker's timer does: writes the windows' aggregates

    try:
        batch: list[bytes] = []
        batch_end = start + BATCH
        for item in fleet_stream(fleet, injector, start, end):
            if item.due >= end:
                continue  # not sent yet
            out.items.append(item)
            if item.message is None:  # nothing sent: ground truth only
                continue
            while item.due >= batch_end:
                await deliver(batch, batch_end)
                batch, batch_end = [], batch_end + BATCH
            received = arrival(item)
            out.received[id(item)] = received
            decoded = decode_message(
                item.message.topic,
                item.message.payload,
                received,
                settings.mqtt.max_payload_bytes,
                config=routing,
            )
            if decoded.dead_letter is not None:
                out.letters.append(decoded.dead_letter)
            batch += [reading.to_bytes() for reading in decoded.readings]
        await deliver(batch, end)
    finally:
        writer.close()
    out.letters += [DeadLetter.model_validate_json(v) for _, v in topics["deadletter"].sent]
    return out
