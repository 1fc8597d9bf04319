import math
import random
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import eventtimes, pipeline
from streams.alerts import AlertRule
from streams.pipeline import (
    PROCESSING_FAILED,
    Outcome,
    StreamsConfig,
    check_stale,
    district_rows,
    mark_written,
    new_district_state,
    process_district,
    process_sensor,
    snapshot_aggregates,
    unwritten_aggregates,
)
from streams.quality import epoch_us
from streams.state import (
    DistrictRecord,
    DistrictState,
    SensorState,
    Series,
    decode_sensor,
    encode_sensor,
)
from streams.windows import Aggregate, offline
from tests.unit.streams.helpers import T0, reading, series
from urbanpulse import flags
from urbanpulse.model import Reading
from urbanpulse.registry import SensorInfo
from urbanpulse.settings import StreamsSettings

CONFIG = StreamsConfig.from_settings(StreamsSettings())
INFO = SensorInfo(tenant="town", sensor_id="air-1", district="centre", lat=52.1, lon=5.1)


def test_duplicates_by_time_are_dropped_a_repeated_message_id_is_not() -> None:
    # Identity (issue 14): an observation is its series and event time. A message id seen
    # before, at another time, is another observation (the same bytes published again).
    first = reading()
    same_id = reading(observed_at=T0 + timedelta(seconds=5))
    same_time = reading(message_id="other", value=99)
    state, out = process_sensor(SensorState(), [first, same_id, same_time], None, False, CONFIG)
    assert [r.observed_at for r in out.stored] == [T0, T0 + timedelta(seconds=5)]
    assert out.duplicates == 1
    # and across batches, through the saved state
    state = decode_sensor(encode_sensor(state))
    _, again = process_sensor(state, [first], None, False, CONFIG)
    assert again.stored == [] and again.duplicates == 1


def test_out_of_range_is_a_dead_letter() -> None:
    state, out = process_sensor(SensorState(), [reading(value=-5)], None, False, CONFIG)
    assert out.stored == [] and snapshot_aggregates(state, CONFIG) == []
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
    # the district gets the sensor's window aggregates (not the reading)
    [record] = out.district_records()
    assert (record.tenant, record.district) == ("town", "centre")
    assert sorted(w.window for w in record.windows) == ["15m", "1h", "1m"]
    assert all(w.sensor_id == "air-1" and w.aggregate.count == 1 for w in record.windows)


def test_a_restricted_sensor_is_stored_and_aggregated_but_feeds_no_district() -> None:
    for privacy in ("restricted", "personal"):
        info = INFO.model_copy(update={"privacy": privacy})
        state, out = process_sensor(SensorState(), [reading()], info, True, CONFIG)
        assert len(out.stored) == 1 and snapshot_aggregates(state, CONFIG)
        assert out.district_records() == []


def test_running_aggregates_per_window() -> None:
    state, _ = process_sensor(SensorState(), series([10, 20, 30]), None, False, CONFIG)
    by_window = {(u.window, u.start_us): u.value for u in snapshot_aggregates(state, CONFIG)}
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
    assert snapshot_aggregates(state, CONFIG)
    _, out = process_sensor(state, [reading(message_id="late")], None, False, CONFIG)
    assert flags.LATE in out.stored[0].quality_flags
    assert snapshot_aggregates(state, CONFIG) == []


def test_future_reading_is_flagged_and_kept_out_of_aggregates() -> None:
    ahead = reading(observed_at=T0 + timedelta(hours=1), received_at=T0)
    state, out = process_sensor(SensorState(), [ahead], None, False, CONFIG)
    assert out.stored[0].quality_flags == (flags.FUTURE,)
    assert snapshot_aggregates(state, CONFIG) == []


def test_a_future_reading_does_not_become_the_series_newest() -> None:
    # Issue 15: a reading from a clock a day ahead must not make every real reading after it
    # look out of order (no alerts, no spike, stuck or gap checks).
    config = StreamsConfig(rules=(AlertRule("high", "pm2_5", ">", 50, timedelta(0)),))
    ahead = reading(observed_at=T0 + timedelta(days=1), message_id="ahead")
    later = series([10, 600], step=timedelta(minutes=1))
    state, out = process_sensor(SensorState(), [later[0], ahead, later[1]], None, False, config)
    assert [a.state for a in out.alerts] == ["open"]
    assert out.stored[1].quality_flags == (flags.FUTURE,)
    assert out.stored[2].quality_flags == (flags.SPIKE,)  # against 10, not the future one
    hour = [u.value.count for u in snapshot_aggregates(state, config) if u.window == "1h"]
    assert hour == [2]


def test_a_reading_that_breaks_processing_is_a_dead_letter_and_the_rest_flow_on() -> None:
    # Issue 15: one reading that raises (here a window sum that would overflow; the model
    # refuses values beyond 1e300, so these come only from outside it) goes to the dead
    # letters with the reason; the batch goes on and no aggregate is left non-finite.
    seconds = series([0, 0, 0], step=timedelta(seconds=1))
    huge = [
        Reading(**{**msgspec.structs.asdict(r), "value": v, "quantity": "strange"})
        for r, v in zip(seconds, [1.7e308, 1.7e308, 5.0], strict=True)
    ]
    state, out = process_sensor(SensorState(), huge, None, False, CONFIG)
    assert [r.value for r in out.stored] == [1.7e308, 5.0]
    [(refused, reason, detail)] = out.dead_letters
    assert refused.value == 1.7e308 and reason == PROCESSING_FAILED
    assert detail.startswith("OverflowError: the sum of the window")
    for update in snapshot_aggregates(state, CONFIG):
        assert math.isfinite(update.value.mean) and update.value.count == 2


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


def run_district(
    states: dict[bytes, DistrictState],
    records: list[DistrictRecord],
    config: StreamsConfig = CONFIG,
) -> Outcome:
    """The district agent's part: each record's windows applied to their district rows."""
    out = Outcome()
    for key, (partition, updates) in district_rows([(0, r) for r in records]).items():
        state = states.setdefault(key, new_district_state(key, partition, updates[0][0].unit))
        process_district(state, updates, config, out)
    return out


def test_district_aggregates_over_sensors() -> None:
    info = {s: SensorInfo(tenant="town", sensor_id=s, district="centre") for s in "ab"}
    records = []
    for sensor, value in (("a", 1.0), ("b", 3.0)):
        _, sent = process_sensor(
            SensorState(), [reading(sensor_id=sensor, value=value)], info[sensor], True, CONFIG
        )
        records += sent.district_records()
    states: dict[bytes, DistrictState] = {}
    out = run_district(states, records)
    again = run_district(states, records[:1])  # a replay
    hour = next(u for u in out.aggregates() if u.window == "1h")
    assert hour.scope == "district" and hour.subject == "centre"
    assert hour.value == Aggregate(2, 2.0, 1.0, 3.0, 3.0)
    assert again.aggregates() == []  # a replay changes nothing: nothing to write again


def test_probes_of_one_quantity_are_separate_series() -> None:
    both = [reading(probe="1", value=10), reading(probe="2", value=20)]  # same time
    state, out = process_sensor(SensorState(), both, INFO, True, CONFIG)
    assert len(out.stored) == 2 and out.duplicates == 0
    written = snapshot_aggregates(state, CONFIG)
    hour = sorted((u.probe, u.value.mean) for u in written if u.window == "1h")
    assert hour == [("1", 10.0), ("2", 20.0)]
    assert sorted(state.series) == ["pm2_5#1", "pm2_5#2"]
    [record] = out.district_records()  # the district counts each probe as a member
    assert sorted(w.probe for w in record.windows if w.window == "1h") == ["1", "2"]


def test_a_reading_older_than_what_a_series_remembers_is_late_not_counted() -> None:
    few = StreamsConfig.from_settings(StreamsSettings(dedupe_max_times=3))
    state, _ = process_sensor(SensorState(), series([1, 2, 3, 4, 5]), None, False, few)
    snapshot_aggregates(state, few)
    assert len(state.series["pm2_5"].times) == 3  # readings 2, 3, 4 remembered
    again = series([1, 2, 3, 4, 5])
    _, out = process_sensor(state, [again[1], again[4], again[0]], None, False, few)
    # reading 4 (the fifth) is remembered: a duplicate. Readings 1 and 0 are older than what is
    # remembered: maybe repeats, so stored (the same point) but not counted again.
    assert out.duplicates == 1
    assert [r.quality_flags for r in out.stored] == [(flags.LATE,), (flags.LATE,)]
    assert snapshot_aggregates(state, few) == []


# Sensors of a district up to 3 h apart (partitions at different paces): within the horizon.
WIDE = StreamsConfig.from_settings(StreamsSettings(dedupe_horizon_s=4 * 3600))
LATENESS_MIN = 5
MIN_US = 60_000_000
points = st.lists(
    st.tuples(
        st.integers(0, 60 * MIN_US),
        st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 3)),
    ),
    min_size=1,
    max_size=80,
    unique_by=lambda p: p[0],
)
SMALL = StreamsConfig(
    windows=(("1m", MIN_US), ("15m", 15 * MIN_US), ("1h", 60 * MIN_US)),
    lateness_us=LATENESS_MIN * MIN_US,
    quality=StreamsConfig().quality,
)


def at(t_us: int, value: float) -> Reading:
    """A reading of a quantity with no physical range: any value is aggregated."""
    moment = T0 + timedelta(microseconds=t_us)
    return reading(
        quantity="level",
        unit="1",
        value=value,
        observed_at=moment,
        received_at=moment,
        message_id=f"m{t_us}",
    )


def disordered_batches(
    raw: list[tuple[int, float]], rng: random.Random, cuts: int
) -> list[list[tuple[int, float]]]:
    """The points shuffled within the allowed lateness, then cut into batches at random."""
    ordered = raw[:]
    rng.shuffle(ordered)
    block = LATENESS_MIN * MIN_US  # disorder only within the allowed lateness
    ordered.sort(key=lambda p: (p[0] + epoch_us(T0)) // block)
    at = sorted(rng.sample(range(len(ordered) + 1), k=min(cuts, len(ordered) + 1)))
    return [ordered[a:b] for a, b in zip([0, *at], [*at, len(ordered)], strict=True)]


def strict_remember(series: Series, t_us: int, config: StreamsConfig) -> None:
    """The dedupe memory's reference: the oldest beyond the cap dropped with each reading
    (``_remember`` drops them an eighth at a time, and must answer the same)."""
    eventtimes.add(series, t_us)
    if len(series.times) > config.dedupe_max_times:
        if series.mark_us is not None:
            eventtimes.forget_before(series, series.mark_us - config.remember_us)
        excess = len(series.times) - config.dedupe_max_times
        if excess > 0:
            series.floor_us = eventtimes.forget_oldest(series, excess) + 1


def outcomes(
    batches: list[list[int]], config: StreamsConfig
) -> list[tuple[int, list[tuple[int, tuple[str, ...]]]]]:
    """Each batch's duplicates and stored (time, flags), through saved states."""
    state, seen = SensorState(), []
    for batch in batches:
        _, out = process_sensor(state, [at(t, t % 7) for t in batch], None, False, config)
        seen.append(
            (out.duplicates, [(epoch_us(r.observed_at), r.quality_flags) for r in out.stored])
        )
        state = decode_sensor(encode_sensor(state))
    return seen


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 400), max_size=40), max_size=8),
    st.sampled_from([1, 8, 16, 24]),
    st.sampled_from([1, 20, 7_200]),
)
def test_the_dedupe_memory_answers_as_if_it_dropped_the_oldest_at_once(
    batches: list[list[int]], cap: int, horizon_s: int
) -> None:
    # Times in seconds, repeated and out of order, some past the horizon, the cap or both.
    config = StreamsConfig(
        windows=(("1s", 1_000_000),),
        lateness_us=2_000_000,
        dedupe_horizon_us=horizon_s * 1_000_000,
        dedupe_max_times=cap,
        quality=StreamsConfig().quality,
    )
    seconds = [[t * 1_000_000 for t in batch] for batch in batches]
    lazy = outcomes(seconds, config)
    with patch.object(pipeline, "_remember", strict_remember):
        assert outcomes(seconds, config) == lazy


def test_a_reading_late_for_its_minute_still_counts_in_its_quarter_and_hour() -> None:
    # Lateness 5 min; the watermark at 10 min: the minute [1, 2) is final, the quarter is not.
    readings = [at(0, 1.0), at(10 * MIN_US, 2.0), at(MIN_US, 3.0), at(MIN_US + 1, 4.0)]
    state, out = process_sensor(SensorState(), readings, None, False, SMALL)
    assert [flags.LATE in r.quality_flags for r in out.stored] == [False, False, True, True]
    counts = {
        (u.window, u.start_us - epoch_us(T0)): u.value.count
        for u in snapshot_aggregates(state, SMALL)
    }
    assert counts == {("1m", 0): 1, ("1m", 10 * MIN_US): 1, ("15m", 0): 4, ("1h", 0): 4}


@settings(max_examples=150, deadline=None)
@given(points, st.integers(0, 2**32))
def test_any_split_replay_and_restart_within_lateness_equals_the_offline_computation(
    raw: list[tuple[int, float]], seed: int
) -> None:
    rng = random.Random(seed)
    batches = disordered_batches(raw, rng, cuts=3)
    state = SensorState()
    written: dict[tuple[str, int], Aggregate] = {}
    for batch in batches:
        # at least once: a batch may come twice, and the state may be restored from a snapshot
        for _ in range(rng.choice([1, 1, 2])):
            process_sensor(state, [at(t, v) for t, v in batch], None, False, SMALL)
            updates = snapshot_aggregates(state, SMALL)
            written |= {(u.window, u.start_us): u.value for u in updates}
            state = decode_sensor(encode_sensor(state))
    for name, size in SMALL.windows:
        expected = offline([(str(t), t + epoch_us(T0), v) for t, v in raw], size)
        assert {s: a for (n, s), a in written.items() if n == name} == expected


@settings(max_examples=150, deadline=None)
@given(points, st.integers(0, 2**32))
def test_aggregates_written_once_per_snapshot_equal_the_offline_computation_across_crashes(
    raw: list[tuple[int, float]], seed: int
) -> None:
    # The worker's protocol: a snapshot writes the windows changed since the last one (final
    # ones included: they stay in the state until written), then saves the state; a crash
    # loses what was not saved, and the batches since the last snapshot are read again.
    rng = random.Random(seed)
    batches = disordered_batches(raw, rng, cuts=8)
    written: dict[tuple[str, int], Aggregate] = {}
    saved = encode_sensor(SensorState())
    since_snapshot: list[list[tuple[int, float]]] = []
    state = decode_sensor(saved)

    def snapshot() -> bytes:
        updates = list(unwritten_aggregates(state, SMALL))
        written.update({(u.window, u.start_us): u.value for u in updates})
        mark_written(state, SMALL)
        since_snapshot.clear()
        return encode_sensor(state)

    for batch in batches:
        process_sensor(state, [at(t, v) for t, v in batch], None, False, SMALL)
        since_snapshot.append(batch)
        if rng.random() < 0.3:
            saved = snapshot()
        elif rng.random() < 0.2:  # a crash: restore the snapshot, replay what it did not cover
            state, replay = decode_sensor(saved), list(since_snapshot)
            for again in replay:
                process_sensor(state, [at(t, v) for t, v in again], None, False, SMALL)
    snapshot()
    for name, size in SMALL.windows:
        expected = offline([(str(t), t + epoch_us(T0), v) for t, v in raw], size)
        assert {s: a for (n, s), a in written.items() if n == name} == expected


def test_a_snapshot_writes_only_the_windows_changed_since_the_last_one() -> None:
    state, _ = process_sensor(SensorState(), series([1, 2]), None, False, CONFIG)
    windows = sorted(u.window for u in unwritten_aggregates(state, CONFIG))
    assert windows == ["15m", "1h", "1m", "1m"]  # two minutes: two 1m windows
    mark_written(state, CONFIG)
    assert list(unwritten_aggregates(state, CONFIG)) == []
    later = reading(observed_at=T0 + timedelta(minutes=2, seconds=30), value=9)
    process_sensor(state, [later], None, False, CONFIG)
    [one_minute] = [u for u in unwritten_aggregates(state, CONFIG) if u.window == "1m"]
    assert one_minute.value.count == 1 and one_minute.value.last == 9
    assert len(list(unwritten_aggregates(state, CONFIG))) == 3


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["s-a", "s-b", "s-c"]), st.integers(0, 180), st.integers(0, 99)),
        min_size=1,
        max_size=120,
        unique_by=lambda p: (p[0], p[1]),
    ),
    st.integers(0, 2**32),
)
def test_a_district_equals_the_offline_aggregate_of_its_sensors_however_they_interleave(
    raw: list[tuple[str, int, int]], seed: int
) -> None:
    """Each sensor in order, in batches; sensors interleaved arbitrarily (one partition far
    ahead of another, within the dedupe horizon). A sensor's worker may crash: it restarts
    from its last snapshot and sends its windows again, with smaller counts first."""
    rng = random.Random(seed)
    info = {
        s: SensorInfo(tenant="town", sensor_id=s, district="centre") for s in ("s-a", "s-b", "s-c")
    }
    queues = [sorted(p for p in raw if p[0] == s) for s in info]
    queues = [q for q in queues if q]
    sensors = {s: SensorState() for s in info}
    snapshots = {s: (encode_sensor(SensorState()), []) for s in info}
    records: list[DistrictRecord] = []

    def run(sensor: str, batch: list[Reading]) -> None:
        _, out = process_sensor(sensors[sensor], batch, info[sensor], True, WIDE)
        records.extend(out.district_records())

    while queues:
        queue = rng.choice(queues)
        batch = [queue.pop(0) for _ in range(min(len(queue), rng.randint(1, 5)))]
        sensor = batch[0][0]
        readings = [
            reading(
                sensor_id=sensor,
                value=float(v),
                observed_at=T0 + timedelta(minutes=m),
                received_at=T0 + timedelta(minutes=m),
                message_id=f"{sensor}{m}",
            )
            for _, m, v in batch
        ]
        run(sensor, readings)
        saved, since = snapshots[sensor]
        since.append(readings)
        if rng.random() < 0.3:  # a crash: back to the snapshot, the batches since again
            sensors[sensor] = decode_sensor(saved)
            for again in since:
                run(sensor, again)
        if rng.random() < 0.5:  # a snapshot
            snapshots[sensor] = (encode_sensor(sensors[sensor]), [])
        queues = [q for q in queues if q]
    states: dict[bytes, DistrictState] = {}
    written: dict[tuple[str, int], Aggregate] = {}
    while records:  # district batches of 1 to 4 records
        size = rng.randint(1, 4)
        batch, records = records[:size], records[size:]
        out = run_district(states, batch, WIDE)
        for u in out.aggregates():
            before = written.get((u.window, u.start_us))
            assert before is None or u.value.count >= before.count, "a replay regressed it"
            written[(u.window, u.start_us)] = u.value
    for name, size in WIDE.windows:
        members = [(f"{s}@{m}", epoch_us(T0 + timedelta(minutes=m)), float(v)) for s, m, v in raw]
        assert {s: a for (n, s), a in written.items() if n == name} == offline(members, size)


# --- runs taken at once (pipeline._take_run) against the reading-by-reading way -------------

RUN_RULES = (
    AlertRule("high", "pm2_5", ">", 50, timedelta(0)),
    AlertRule("long", "pm2_5", ">", 30, timedelta(minutes=2)),
)
# A message, drawn for each: which series, when it starts (seconds; overlaps, repeats and
# disorder included), how many readings how far apart, their values (out of range, spikes,
# stuck repeats), the clock of its receipt and the readings' own flags.
run_messages = st.lists(
    st.tuples(
        st.sampled_from(
            [
                ("pm2_5", None, "ug/m3"),
                ("level", None, "1"),
                ("temperature", "a", "Cel"),
                ("temperature", "b", "Cel"),
                ("pm2_5", None, "mg/m3"),
            ]
        ),
        st.integers(0, 900),
        st.lists(
            st.sampled_from([0.0, 5.0, 20.0, 40.0, 60.0, 600.0, -70.0, 3000.0]),
            min_size=1,
            max_size=12,
        ),
        st.sampled_from([1, 10, 30]),
        st.sampled_from([1, 1, 1, -600, 2 * 86_400]),  # receipt after observation, s
        st.sampled_from([(), (), ("suspect",)]),
    ),
    max_size=8,
)
Message = tuple[tuple[str, str | None, str], int, list[float], int, int, tuple[str, ...]]


def message_readings(message: Message) -> list[Reading]:
    """A message's readings: one series, ``step`` seconds apart, one receipt time."""
    (quantity, probe, unit), t_s, values, step_s, skew_s, own = message
    received = T0 + timedelta(seconds=t_s + step_s * len(values) + skew_s)
    return [
        msgspec.structs.replace(
            reading(
                quantity=quantity,
                probe=probe,
                unit=unit,
                value=value,
                observed_at=T0 + timedelta(seconds=t_s + k * step_s),
                received_at=received,
                message_id=f"m{t_s}-{k}",
            ),
            quality_flags=own,
        )
        for k, value in enumerate(values)
    ]


def comparable(state: SensorState, config: StreamsConfig) -> bytes:
    """The state as its answers see it: the dedupe memory's times below what it answers for
    (the floor, the horizon) left out, as ``_take_run`` drops them later or sooner."""
    copy = decode_sensor(encode_sensor(state))
    for s in copy.series.values():
        horizon = None if s.mark_us is None else s.mark_us - config.remember_us
        if s.floor_us is not None and horizon is not None and s.floor_us <= horizon:
            s.floor_us = None  # below the horizon a floor answers nothing (where it is varies)
        limits = [s.floor_us, horizon]
        limit = max((x for x in limits if x is not None), default=None)
        kept = [t for t in eventtimes.absolute(s) if limit is None or t >= limit]
        s.times, s.base_us = eventtimes._compact(kept) if kept else (s.times[:0], None)
    return encode_sensor(copy)


def run_outcomes(
    batches: list[list[Reading]], config: StreamsConfig, info: SensorInfo | None, registry: bool
) -> list[object]:
    """Everything each batch produced, and the state after it, through saved states."""
    state, seen = SensorState(), []
    for n, batch in enumerate(batches):
        _, out = process_sensor(state, batch, info, registry, config)
        seen.append((out.stored, out.dead_letters, out.duplicates, out.alerts, list(out.touched)))
        if n % 2:
            seen.append(snapshot_aggregates(state, config))
        seen.append(comparable(state, config))
        state = decode_sensor(encode_sensor(state))
    return seen


@settings(max_examples=300, deadline=None)
@given(
    st.lists(run_messages, max_size=6),
    st.sampled_from([1, 8, 16, 256]),
    st.sampled_from([None, INFO]),
    st.booleans(),
)
def test_runs_taken_at_once_give_what_reading_by_reading_gives(
    messages: list[list[Message]],
    cap: int,
    info: SensorInfo | None,
    registry: bool,
) -> None:
    config = StreamsConfig(
        windows=(("1m", MIN_US), ("15m", 15 * MIN_US)),
        lateness_us=2 * MIN_US,
        dedupe_horizon_us=5 * MIN_US,
        dedupe_max_times=cap,
        rules=RUN_RULES,
        quality=StreamsConfig().quality,
    )
    batches = [[r for m in batch for r in message_readings(m)] for batch in messages]
    taken = run_outcomes(batches, config, info, registry)
    with patch.object(pipeline, "_take_run", lambda *_: 0):
        assert run_outcomes(batches, config, info, registry) == taken


def test_a_run_of_one_message_is_taken_at_once() -> None:
    # The equivalence above holds whether or not runs are taken; this says they are.
    state, _ = process_sensor(SensorState(), series([10]), None, False, CONFIG)
    calls: list[int] = []
    real = pipeline._Run.commit

    def counted(run: Any, out: Outcome) -> None:
        calls.append(len(run.stored))
        real(run, out)

    later = [
        msgspec.structs.replace(
            r,
            observed_at=r.observed_at + timedelta(hours=1),
            received_at=r.received_at + timedelta(hours=1),
        )
        for r in series([11, 12, 13])
    ]
    with patch.object(pipeline._Run, "commit", counted):
        _, out = process_sensor(state, later, None, False, CONFIG)
    assert calls == [3] and len(out.stored) == 3


def test_a_reading_that_breaks_a_run_is_a_dead_letter_and_the_rest_flow_on() -> None:
    # Nothing a sensor sends may stop the pipeline: the run ends at the reading that raises,
    # which goes the per-reading way (a dead letter, with the reason), and the rest of the
    # message is stored, the same as reading by reading.
    real = pipeline.quality.sequence_flags_within

    def breaks_at_13(bounds: Any, value: float, *args: Any) -> Any:
        if value == 13:
            raise ZeroDivisionError("a stage broke")
        return real(bounds, value, *args)

    def outcome() -> tuple[object, ...]:
        state, _ = process_sensor(SensorState(), series([10]), None, False, CONFIG)
        message = [
            msgspec.structs.replace(
                r,
                observed_at=r.observed_at + timedelta(hours=1),
                received_at=r.received_at + timedelta(hours=1),
            )
            for r in series([11, 12, 13, 14, 15])
        ]
        with patch.object(pipeline.quality, "sequence_flags_within", breaks_at_13):
            _, out = process_sensor(state, message, None, False, CONFIG)
        return out.stored, out.dead_letters, encode_sensor(state)

    stored, letters, state = outcome()
    assert [r.value for r in stored] == [11, 12, 14, 15]
    assert [(r.value, reason, detail) for r, reason, detail in letters] == [
        (13, PROCESSING_FAILED, "ZeroDivisionError: a stage broke")
    ]
    with patch.object(pipeline, "_take_run", lambda *_: 0):
        assert outcome() == (stored, letters, state)
