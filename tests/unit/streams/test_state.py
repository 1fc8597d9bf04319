"""Sensor states: snapshots round-trip, stay bounded, and the previous worker's states are read."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from streams.pipeline import StreamsConfig, process_sensor, snapshot_aggregates
from streams.state import (
    MAX_RECORD_WINDOWS,
    DistrictRecord,
    SensorState,
    SensorWindow,
    decode_sensor,
    encode_record,
    encode_sensor,
    split_record,
)
from streams.windows import Window
from tests.unit.streams.helpers import reading
from urbanpulse.model import Reading
from urbanpulse.settings import StreamsSettings

CONFIG = StreamsConfig.from_settings(StreamsSettings())
# Written by the worker before snapshots (branch hot, streams.pipeline.SensorState as JSON):
# readings 0..99 of old_reading() below, partition 3.
BEFORE = Path(__file__).parent / "fixtures" / "sensor_state_before_snapshots.json"
T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def old_reading(i: int) -> Reading:
    """Reading ``i`` of the fixture's sensor: 37 s apart, values that wander."""
    at = T0 + timedelta(seconds=37 * i)
    return reading(
        value=round(5 + (i * 7.3) % 20, 2),
        observed_at=at,
        received_at=at + timedelta(seconds=1),
        message_id=f"m{i}",
    )


def test_a_snapshot_round_trips() -> None:
    state, _ = process_sensor(
        SensorState(partition=2), [old_reading(i) for i in range(50)], None, False, CONFIG
    )
    again = decode_sensor(encode_sensor(state))
    assert again == state and again.partition == 2
    assert list(again.series["pm2_5"].times) == list(state.series["pm2_5"].times)


def test_a_state_of_the_previous_worker_carries_on_as_if_never_stopped() -> None:
    migrated = decode_sensor(BEFORE.read_bytes())
    assert (migrated.partition, migrated.tenant, migrated.sensor_id) == (3, "town", "air-1")
    fresh, _ = process_sensor(
        SensorState(partition=3), [old_reading(i) for i in range(100)], None, False, CONFIG
    )
    snapshot_aggregates(fresh, CONFIG)  # written before the upgrade
    rest = [old_reading(i) for i in range(95, 120)]  # 5 repeats, then 20 new readings
    _, after_upgrade = process_sensor(migrated, rest, None, False, CONFIG)
    _, unbroken = process_sensor(fresh, rest, None, False, CONFIG)
    assert after_upgrade.duplicates == unbroken.duplicates == 5
    assert after_upgrade.stored == unbroken.stored
    upgraded = snapshot_aggregates(migrated, CONFIG)
    assert upgraded and sorted(upgraded, key=str) == sorted(
        snapshot_aggregates(fresh, CONFIG), key=str
    )


def test_state_stays_bounded_however_long_the_history() -> None:
    sizes = []
    state = SensorState()
    for hours in (1, 10):
        start = 0 if not sizes else 3600
        batch = [
            reading(
                value=10 + i % 7,
                observed_at=T0 + timedelta(seconds=i),
                received_at=T0 + timedelta(seconds=i),
                message_id=f"m{i}",
            )
            for i in range(start, hours * 3600)
        ]
        process_sensor(state, batch, None, False, CONFIG)
        # Final windows stay until a snapshot wrote them (every few seconds in the worker).
        snapshot_aggregates(state, CONFIG)
        series = state.series["pm2_5"]
        cap = CONFIG.dedupe_max_times
        assert len(series.times) <= cap + cap // 8  # the forgotten are dropped an eighth at once
        # 1 m windows open for the 10 min of lateness, at most two 15 m and 1 h ones
        minute = 60_000_000
        open_windows = {w.size_us // minute: len(w) for w in series.windows}
        assert open_windows[1] == 11 and open_windows[15] <= 2 and open_windows[60] <= 2
        sizes.append(len(encode_sensor(state)))
    assert sizes[1] <= sizes[0] * 1.05, sizes  # a reading a second for 1 h or for 10 h
    assert sizes[1] < 4096


def test_a_district_record_of_many_sensors_is_split_in_order_under_kafkas_limit() -> None:
    windows = [
        SensorWindow("pm2_5", "ug/m3", "1h", "s" * 128, None, i, Window(0, 1, 1.0, 1, 1, i, 1))
        for i in range(2 * MAX_RECORD_WINDOWS + 1)
    ]
    parts = split_record(DistrictRecord("town", "centre", windows))
    assert [len(p.windows) for p in parts] == [MAX_RECORD_WINDOWS, MAX_RECORD_WINDOWS, 1]
    assert [w for p in parts for w in p.windows] == windows
    assert all(len(encode_record(p)) < 1_000_000 for p in parts)
