from datetime import timedelta

from streams.alerts import AlertRule
from streams.pipeline import (
    DistrictState,
    SensorState,
    StreamsConfig,
    check_stale,
    process_district,
    process_sensor,
)
from streams.quality import epoch_us
from streams.windows import Aggregate
from tests.unit.streams.helpers import T0, reading, series
from urbanpulse import flags
from urbanpulse.registry import SensorInfo
from urbanpulse.settings import StreamsSettings

CONFIG = StreamsConfig.from_settings(StreamsSettings())
INFO = SensorInfo(tenant="town", sensor_id="air-1", district="centre", lat=52.1, lon=5.1)


def test_duplicates_by_message_id_and_by_time_are_dropped() -> None:
    first = reading()
    same_id = reading(observed_at=T0 + timedelta(seconds=5))
    same_time = reading(message_id="other", value=99)
    state, out = process_sensor(SensorState(), [first, same_id, same_time], None, False, CONFIG)
    assert [r.value for r in out.stored] == [12] and out.duplicates == 2
    # and across batches, through the serialised state
    state = SensorState.model_validate_json(state.model_dump_json())
    _, again = process_sensor(state, [first], None, False, CONFIG)
    assert again.stored == [] and again.duplicates == 1


def test_out_of_range_is_a_dead_letter() -> None:
    _, out = process_sensor(SensorState(), [reading(value=-5)], None, False, CONFIG)
    assert out.stored == [] and out.aggregates == {}
    [(_, reason, detail)] = out.dead_letters
    assert reason == "out_of_range" and "physical range" in detail


def test_unregistered_policy() -> None:
    _, accepted = process_sensor(SensorState(), [reading()], None, True, CONFIG)
    assert accepted.stored[0].quality_flags == (flags.UNREGISTERED,)
    strict = StreamsConfig.from_settings(StreamsSettings(unknown_sensors="deadletter"))
    _, refused = process_sensor(SensorState(), [reading()], None, True, strict)
    assert refused.stored == [] and refused.dead_letters[0][1] == "unregistered_sensor"
    _, no_registry = process_sensor(SensorState(), [reading()], None, False, strict)
    assert no_registry.stored[0].quality_flags == ()


def test_enrichment_location_and_district_forwarding() -> None:
    _, out = process_sensor(SensorState(), [reading()], INFO, True, CONFIG)
    [stored] = out.stored
    assert stored.location is not None and stored.location.lat == 52.1
    assert out.to_district == [("centre", stored)]


def test_a_restricted_sensor_is_stored_and_aggregated_but_feeds_no_district() -> None:
    for privacy in ("restricted", "personal"):
        info = INFO.model_copy(update={"privacy": privacy})
        _, out = process_sensor(SensorState(), [reading()], info, True, CONFIG)
        assert len(out.stored) == 1 and out.aggregates
        assert out.to_district == []


def test_running_aggregates_per_window() -> None:
    _, out = process_sensor(SensorState(), series([10, 20, 30]), None, False, CONFIG)
    by_window = {(u.window, u.start_us): u.value for u in out.aggregates.values()}
    assert by_window[("1m", epoch_us(T0) + 120_000_000)] == Aggregate(1, 30, 30, 30, 30)
    assert by_window[("15m", epoch_us(T0))] == Aggregate(3, 20, 10, 30, 30)
    assert by_window[("1h", epoch_us(T0))] == Aggregate(3, 20, 10, 30, 30)


def test_late_reading_is_stored_flagged_and_not_aggregated() -> None:
    state, _ = process_sensor(
        SensorState(),
        [reading(observed_at=T0 + timedelta(hours=2), received_at=T0 + timedelta(hours=2))],
        None,
        False,
        CONFIG,
    )
    _, out = process_sensor(state, [reading(message_id="late")], None, False, CONFIG)
    assert flags.LATE in out.stored[0].quality_flags and out.aggregates == {}


def test_future_reading_is_flagged_and_kept_out_of_aggregates() -> None:
    ahead = reading(observed_at=T0 + timedelta(hours=1), received_at=T0)
    _, out = process_sensor(SensorState(), [ahead], None, False, CONFIG)
    assert out.stored[0].quality_flags == (flags.FUTURE,) and out.aggregates == {}


def test_alert_episode_and_stale_sensor() -> None:
    config = StreamsConfig(rules=(AlertRule("high", "pm2_5", ">", 50, timedelta(minutes=2)),))
    state, out = process_sensor(SensorState(), series([60, 70, 80, 10]), None, False, config)
    assert [(a.state, a.value) for a in out.alerts] == [("open", 80), ("closed", 80)]
    last_received = epoch_us(T0 + timedelta(minutes=3, seconds=1))
    silent = last_received + 16 * 60_000_000  # default 5 min x 3
    state, event = check_stale(state, silent, config)
    assert event is not None and event.rule == "stale" and event.state == "open"
    assert check_stale(state, silent + 1, config)[1] is None  # one episode, not one per check
    later = reading(
        observed_at=T0 + timedelta(hours=1),
        received_at=T0 + timedelta(hours=1),
        message_id="back",
        value=10,
    )
    _, out = process_sensor(state, [later], None, False, config)
    [closed] = out.alerts
    assert closed.rule == "stale" and closed.state == "closed" and closed.ended_at is not None


def test_district_aggregates_over_sensors() -> None:
    readings = [reading(sensor_id=s, value=v) for s, v in (("a", 1.0), ("b", 3.0))]
    state, out = process_district(DistrictState(), "town", "centre", readings, CONFIG)
    state, again = process_district(state, "town", "centre", readings[:1], CONFIG)  # a replay
    hour = next(u for u in out.aggregates.values() if u.window == "1h")
    assert hour.scope == "district" and hour.subject == "centre"
    assert hour.value == Aggregate(2, 2.0, 1.0, 3.0, 3.0)
    assert [u.value.count for u in again.aggregates.values()] == [2, 2, 2]
