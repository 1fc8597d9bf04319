"""What the worker does with the readings of one sensor, and of one district (pure).

:func:`process_sensor` applies a sensor's readings, in topic order, to its state — changed in
place — and adds to an :class:`Outcome` everything to emit: readings to store (enriched, with
quality flags), dead letters, duplicates dropped, alert events, and the sensor windows to
forward to district aggregation (:meth:`Outcome.district_records`). A sensor's window
aggregates are not part of a batch's outcome: the state marks the windows changed, and the
snapshot computes and writes them once (:func:`unwritten_aggregates`, then
:func:`mark_written`); a window that becomes final stays in the state until then.
:func:`process_district` applies forwarded sensor
windows to a district's state; its aggregates are the outcome's (:meth:`Outcome.aggregates`).
The adapter (``streams.app``) holds the states and does the I/O.

Order of a reading's checks: duplicate (series + event time) → registry policy → physical
range (dead letter) → flags → windows → alert rules. A run of readings of one series each newer
than anything the series knows, in range and with a plausible clock (the usual case: a
message's readings) gets the same, with the bookkeeping done once for the run
(:func:`_take_run`).

Duplicates: each series remembers the event times it stored within the dedupe horizon (and
the open windows), at most ``dedupe_max_times`` of them, the newest. A reading at a remembered
time is a duplicate. A reading older than what is remembered cannot be told from a duplicate:
it is stored (the same point again, if it is one) but flagged ``late`` and not aggregated,
so no window can count a value twice (docs/streams.md, "State").
"""

from __future__ import annotations

import bisect
import logging
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from sys import intern
from typing import Literal, NamedTuple

import msgspec

from streams import eventtimes, quality
from streams.alerts import (
    AlertEvent,
    AlertRule,
    evaluate,
    rules_from_settings,
    stale_event,
)
from streams.exact import SliceSums, exact_total, merge_exact
from streams.quality import QualityRules, epoch_us
from streams.state import (
    PROBE_SEPARATOR,
    DistrictRecord,
    DistrictState,
    DistrictWindow,
    SensorState,
    SensorWindow,
    Series,
    district_key,
    series_key,
)
from streams.windows import Aggregate, Window, WindowSet, is_late, parse_window
from urbanpulse.flags import FUTURE, LATE, TOO_OLD, UNIT_MISMATCH, UNREGISTERED
from urbanpulse.model import Reading
from urbanpulse.quantities import Range
from urbanpulse.registry import SensorInfo
from urbanpulse.settings import StreamsSettings

# Readings with these flags are stored but kept out of aggregates and alerts.
NOT_AGGREGATED = frozenset({FUTURE, TOO_OLD, UNIT_MISMATCH})
# The dead-letter reason of a reading whose processing raised (the detail names the error).
PROCESSING_FAILED = "processing_failed"

log = logging.getLogger(__name__)


def _us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


@dataclass(frozen=True)
class StreamsConfig:
    """The worker's rules, in the units the pure code uses."""

    quality: QualityRules = field(default_factory=QualityRules)
    windows: tuple[tuple[str, int], ...] = (
        ("1m", 60_000_000),
        ("15m", 900_000_000),
        ("1h", 3_600_000_000),
    )
    lateness_us: int = 600_000_000
    dedupe_horizon_us: int = 7_200_000_000
    dedupe_max_times: int = 256
    default_interval: timedelta = timedelta(minutes=5)
    rules: tuple[AlertRule, ...] = ()
    stale_factor: float = 3.0
    unknown_sensors: Literal["accept", "deadletter"] = "accept"
    forget_silent_after_us: int = 7 * 86_400_000_000

    @classmethod
    def from_settings(cls, settings: StreamsSettings) -> StreamsConfig:
        """Build from the ``streams`` settings section."""
        return cls(
            quality=QualityRules(
                max_future=timedelta(seconds=settings.max_future_s),
                max_age=timedelta(seconds=settings.max_age_s),
                gap_factor=settings.gap_factor,
                stuck_count=settings.stuck_count,
            ),
            windows=tuple((name, _us(parse_window(name))) for name in settings.windows),
            lateness_us=_us(timedelta(seconds=settings.allowed_lateness_s)),
            dedupe_horizon_us=_us(timedelta(seconds=settings.dedupe_horizon_s)),
            dedupe_max_times=settings.dedupe_max_times,
            default_interval=timedelta(seconds=settings.expected_interval_s),
            rules=rules_from_settings(settings.alert_rules),
            stale_factor=settings.stale_factor,
            unknown_sensors=settings.unknown_sensors,
            forget_silent_after_us=_us(timedelta(seconds=settings.forget_silent_after_s)),
        )

    @cached_property
    def rules_by_quantity(self) -> dict[str, tuple[AlertRule, ...]]:
        """The alert rules of each quantity that has any."""
        by: dict[str, tuple[AlertRule, ...]] = {}
        for rule in self.rules:
            by[rule.quantity] = (*by.get(rule.quantity, ()), rule)
        return by

    @cached_property
    def window_names(self) -> dict[int, str]:
        """The name of each configured window size (µs)."""
        return {size: name for name, size in self.windows}

    @cached_property
    def remember_us(self) -> int:
        """How far behind its watermark a series remembers event times: the dedupe horizon,
        and at least as far back as a window can still take a value."""
        widest = max((size for _, size in self.windows), default=0)
        return max(self.dedupe_horizon_us, widest + self.lateness_us)


class SeriesHead(msgspec.Struct, frozen=True, gc=False):
    """Who a series belongs to: what its aggregate points are tagged with."""

    tenant: str
    scope: Literal["sensor", "district"]
    subject: str  # sensor id or district
    quantity: str
    probe: str | None
    unit: str
    district: str | None = None  # a sensor series that feeds this district


class AggregateUpdate(msgspec.Struct, frozen=True, gc=False):
    """The running aggregate of one window, to be written (and overwritten) in InfluxDB."""

    tenant: str
    scope: Literal["sensor", "district"]
    subject: str  # sensor id or district
    quantity: str
    window: str
    start_us: int
    unit: str
    value: Aggregate
    probe: str | None = None


Opened = dict[tuple[str, int], WindowSet]  # (size name, start) → the windows of its size


class _Pending:
    """A series' values that reached its windows in this batch, added at its end."""

    __slots__ = ("late_for", "stored_at", "times", "values")

    def __init__(self) -> None:  # by hand: a dataclass's default factories cost a µs
        self.times: list[int] = []
        self.values: list[float] = []
        self.stored_at: list[int] = []  # each value's reading in Outcome.stored
        self.late_for: dict[int, set[int]] | None = None  # position → sizes it was late for


class _Touched(NamedTuple):
    head: SeriesHead
    window: str  # the size's name
    start: int
    aggregate: Window | DistrictWindow
    series: Series | None  # the sensor series, for its watermark when forwarded


@dataclass
class Outcome:
    """Everything a batch produced, for the adapter to write and send."""

    stored: list[Reading] = field(default_factory=list)
    dead_letters: list[tuple[Reading, str, str]] = field(default_factory=list)
    duplicates: int = 0
    alerts: list[AlertEvent] = field(default_factory=list)
    district_late: int = 0  # sensor windows a district had closed already
    # Windows touched: of a district batch, and those of sensors that feed a district (what
    # is forwarded); window → it.
    touched: dict[tuple[object, ...], _Touched] = field(default_factory=dict)

    def aggregates(self) -> list[AggregateUpdate]:
        """The current aggregate of every window in ``touched``, computed once each."""
        out = []
        for t in self.touched.values():
            head = t.head
            value = (
                t.aggregate.aggregate() if isinstance(t.aggregate, Window) else combine(t.aggregate)
            )
            out.append(
                AggregateUpdate(
                    head.tenant,
                    head.scope,
                    head.subject,
                    head.quantity,
                    t.window,
                    t.start,
                    head.unit,
                    value,
                    head.probe,
                )
            )
        return out

    def district_records(self) -> list[DistrictRecord]:
        """The touched windows of districted open sensors, one record per district."""
        records: dict[tuple[str, str], DistrictRecord] = {}
        for t in self.touched.values():
            head, window = t.head, t.aggregate
            if head.district is None or not isinstance(window, Window) or t.series is None:
                continue
            record = records.get((head.tenant, head.district))
            if record is None:
                record = records[(head.tenant, head.district)] = DistrictRecord(
                    head.tenant, head.district, []
                )
            mark = t.series.mark_us if t.series.mark_us is not None else window.last_us
            record.windows.append(
                SensorWindow(
                    head.quantity,
                    head.unit,
                    t.window,
                    head.subject,
                    head.probe,
                    mark,
                    window,
                )
            )
        return list(records.values())


# --- sensors ----------------------------------------------------------------------------------


def _remembered(series: Series, t_us: int, config: StreamsConfig) -> bool | None:
    """True: a duplicate; False: new; None: older than what the series remembers."""
    limit = series.floor_us
    if series.mark_us is not None:
        horizon = series.mark_us - config.remember_us
        limit = horizon if limit is None else max(limit, horizon)
    if limit is not None and t_us < limit:
        return None
    return eventtimes.contains(series, t_us)


def _remember(series: Series, t_us: int, config: StreamsConfig) -> None:
    """Add an event time to the series' memory, forgetting the oldest beyond the cap.

    Forgetting is at once, dropping is not: beyond the cap the floor rises above the newest
    time no longer remembered, so every answer is that of a memory of exactly
    ``dedupe_max_times``; the times below the floor are dropped only once an eighth more are
    held (shifting the array for every reading cost about 0.5 µs, docs/performance.md).
    """
    eventtimes.add(series, t_us)
    _keep_to_cap(series, config)


def _keep_to_cap(series: Series, config: StreamsConfig) -> None:
    """Forget the times beyond the cap (raise the floor), drop them once an eighth more are
    held (:func:`_remember`)."""
    cap = config.dedupe_max_times
    held = len(series.times)
    if held <= cap:
        return
    # From now on a reading that old cannot be told from a repeat.
    forgotten = eventtimes.nth_newest(series, cap + 1)
    if series.floor_us is None or forgotten >= series.floor_us:
        series.floor_us = forgotten + 1
    if held > cap + cap // 8:
        _forget_before_horizon(series, config)
        excess = len(series.times) - cap
        if excess > 0:
            eventtimes.forget_oldest(series, excess)


def _forget_before_horizon(series: Series, config: StreamsConfig) -> None:
    if series.mark_us is not None:
        eventtimes.forget_before(series, series.mark_us - config.remember_us)


def _aggregate(
    series: Series, t_us: int, value: float, config: StreamsConfig, into: _Pending, at: int
) -> bool:
    """Note a value for its window of every size (added at the batch's end, by
    :func:`_add_pending`); True when it was late for any of them. ``at``: where its reading
    goes in ``Outcome.stored``."""
    mark = series.mark_us
    if mark is None or t_us >= mark:
        # The newest so far: its windows all end after the watermark, so none is final.
        series.mark_us = t_us
        late_for = None
    else:
        late_for = {
            size
            for _, size in config.windows
            if is_late(t_us - t_us % size, size, config.lateness_us, mark)
        }
        if len(late_for) == len(config.windows):
            return True
    if late_for:
        if into.late_for is None:
            into.late_for = {}
        into.late_for[len(into.times)] = late_for
    into.times.append(t_us)
    into.values.append(value)
    into.stored_at.append(at)
    return bool(late_for)


_SHARED_SUMS_FROM = 8  # values of a series in a batch


def _add_pending(
    series: Series, pending: _Pending, config: StreamsConfig
) -> tuple[Opened, set[int]]:
    """Add a batch's values of the series to its windows, a run of one window at once: the
    windows reached, and where in ``Outcome.stored`` the readings are whose value a window
    refused (its sum would overflow)."""
    opened: Opened = {}
    refused: set[int] = set()
    late_for = pending.late_for
    # Each value summed once for all the sizes; for a few values the bookkeeping costs more
    # than it saves (benchmarks.instructions, worker 1/sensor: 2-3 values of a series in a
    # batch), and they are summed for each size.
    shared = SliceSums(pending.values) if len(pending.values) >= _SHARED_SUMS_FROM else None
    for name, size in config.windows:
        times, values, kept, sums = pending.times, pending.values, pending.stored_at, shared
        if late_for:
            chosen = [k for k in range(len(times)) if size not in late_for.get(k, ())]
            times, values = [times[k] for k in chosen], [values[k] for k in chosen]
            kept, sums = [kept[k] for k in chosen], None
        if not times:  # late for this size, every one: no window of it is made
            continue
        windows = _windows_of(series, size)
        starts, overflowed = windows.add_all(times, values, sums)
        for start in starts:
            opened[(name, start)] = windows
        if overflowed:
            refused.update(kept[k] for k in overflowed)
    return opened, refused


def _windows_of(series: Series, size: int) -> WindowSet:
    for windows in series.windows:
        if windows.size_us == size:
            return windows
    windows = WindowSet(size)
    series.windows.append(windows)
    return windows


def _tidy(series: Series, config: StreamsConfig) -> None:
    """Drop what the series' watermark made final: written closed windows, times past the
    horizon. (Windows of a size no longer configured are never added to again: they empty out
    here once written.)"""
    mark = series.mark_us
    if mark is None:
        return
    _prune(series, mark, config.lateness_us)
    oldest = eventtimes.oldest(series)
    if oldest is not None and oldest < mark - config.remember_us:
        _forget_before_horizon(series, config)


def _alerts(
    series: Series, reading: Reading, t_us: int, config: StreamsConfig, out: Outcome
) -> None:
    for rule in config.rules_by_quantity.get(reading.quantity, ()):
        episodes = series.episodes or {}
        episode, event = evaluate(
            rule, episodes.get(rule.key), t_us, reading.value, (reading.tenant, reading.sensor_id)
        )
        if episode is None:
            episodes.pop(rule.key, None)
        else:
            episodes[rule.key] = episode
        series.episodes = episodes or None
        if event is not None:
            out.alerts.append(event)


@dataclass(slots=True)
class _SensorBatch:
    """What ``process_sensor`` knows for the whole of one sensor's batch."""

    info: SensorInfo | None
    interval: timedelta
    interval_us: int  # the same, for the checks of every reading
    feeds: str | None  # the district an open sensor's windows go to
    refuse_unknown: bool  # unregistered sensors are dead letters
    unregistered: bool  # flag the readings 'unregistered'
    touched: dict[str, tuple[Series, SeriesHead, _Pending]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        state: SensorState,
        info: SensorInfo | None,
        registry_enabled: bool,
        config: StreamsConfig,
    ) -> _SensorBatch:
        """The batch's context (the registry's interval becomes the state's)."""
        if info is not None:
            state.interval_s = info.interval_s
        interval = (
            timedelta(seconds=state.interval_s) if state.interval_s else config.default_interval
        )
        unknown = info is None and registry_enabled
        return cls(
            info=info,
            interval=interval,
            interval_us=_us(interval),
            feeds=info.district if info is not None and info.privacy == "open" else None,
            refuse_unknown=unknown and config.unknown_sensors == "deadletter",
            unregistered=unknown,
        )


def process_sensor(
    state: SensorState,
    readings: list[Reading],
    info: SensorInfo | None,
    registry_enabled: bool,
    config: StreamsConfig,
    outcome: Outcome | None = None,
) -> tuple[SensorState, Outcome]:
    """Check, dedupe, enrich, aggregate and alert one sensor's readings (in topic order).

    ``state`` is changed in place (and returned); results go to ``outcome`` (a new one if
    none is given), to gather a whole batch's.
    """
    out = outcome if outcome is not None else Outcome()
    batch = _SensorBatch.of(state, info, registry_enabled, config)
    at, count = 0, len(readings)
    while at < count:
        taken = _take_run(state, readings, at, batch, config, out)
        if taken:
            at += taken
            continue
        reading = readings[at]
        at += 1
        try:
            _process_reading(state, reading, batch, config, out)
        except Exception as err:  # one reading that breaks this stage must not stop the city
            log.exception("processing a reading of %s failed", reading.key.decode())
            out.dead_letters.append((reading, PROCESSING_FAILED, f"{type(err).__name__}: {err}"))
    sensor = (state.tenant, state.sensor_id)
    refused: set[int] = set()
    for key, (series, head, pending) in batch.touched.items():
        opened, overflowed = _add_pending(series, pending, config)
        if overflowed:
            refused |= overflowed
        for (name, start), windows in opened.items():
            windows.changed(start)
            if head.district is None:
                continue
            window = windows.window(start)  # forwarded as it ends the batch
            if window is not None:
                out.touched[(*sensor, key, name, start)] = _Touched(
                    head, name, start, window, series
                )
        _tidy(series, config)
    for at in sorted(refused, reverse=True) if refused else ():  # from the end: positions hold
        refusal = "OverflowError: the sum of the window it falls in would overflow"
        log.error("a reading of %s refused: %s", state.sensor_id, refusal)
        out.dead_letters.append((out.stored.pop(at), PROCESSING_FAILED, refusal))
    return state, out


def _prune(series: Series, mark: int, lateness: int) -> None:
    for windows in series.windows:
        slots = windows.slots
        if slots and slots[0] + windows.size_us + lateness <= mark:  # the oldest is final
            windows.prune(lateness, mark)


def snapshot_aggregates(state: SensorState, config: StreamsConfig) -> list[AggregateUpdate]:
    """What a snapshot now would write for the sensor (:func:`unwritten_aggregates`), marked
    written as the worker marks it once InfluxDB took them (:func:`mark_written`)."""
    updates = list(unwritten_aggregates(state, config))
    mark_written(state, config)
    return updates


def unwritten_aggregates(state: SensorState, config: StreamsConfig) -> Iterator[AggregateUpdate]:
    """The aggregates of the sensor's windows changed since they were last written (final
    ones included): what the worker writes once per snapshot (then :func:`mark_written`)."""
    for series in state.series.values():
        for windows in series.windows:
            name = config.window_names.get(windows.size_us)
            if name is None:  # a size no longer configured: never changed again
                continue
            for start, count, mean, smallest, largest, last in windows.unwritten_rows():
                yield AggregateUpdate(
                    state.tenant,
                    "sensor",
                    state.sensor_id,
                    series.quantity,
                    name,
                    start,
                    series.unit,
                    Aggregate(count, mean, smallest, largest, last),
                    series.probe,
                )


def mark_written(state: SensorState, config: StreamsConfig) -> None:
    """Note that every window aggregate of the sensor was written; drop the final windows."""
    for series in state.series.values():
        for windows in series.windows:
            windows.unwritten = None
        if series.mark_us is not None:
            _prune(series, series.mark_us, config.lateness_us)


def _process_reading(
    state: SensorState, reading: Reading, batch: _SensorBatch, config: StreamsConfig, out: Outcome
) -> None:
    """One reading: a repeat, a dead letter, or stored (and aggregated, alerted on)."""
    t_us = epoch_us(reading.observed_at)
    series = _series_of(state, reading)
    known = _remembered(series, t_us, config)
    if known:
        out.duplicates += 1
        return
    refusal = _refusal(reading, batch)
    if refusal is not None:
        out.dead_letters.append((reading, *refusal))
        return
    if known is False:
        _remember(series, t_us, config)
    _note_receipt(state, epoch_us(reading.received_at), batch, config, out)
    flags = list(reading.quality_flags)
    if batch.unregistered:
        flags.append(UNREGISTERED)
    clock = quality.clock_flags(reading, config.quality)
    flags += clock
    if FUTURE in clock:
        # Not the series' newest: every real reading after it would look out of order (no
        # alerts, no spike, stuck or gap checks) until the clock caught up.
        out.stored.append(_as_stored(reading, flags, batch.info))
        return
    in_order = series.memory is None or t_us > series.memory.last_us
    sequence, series.memory = quality.sequence_flags(
        reading, t_us, series.memory, batch.interval_us, config.quality
    )
    flags += sequence
    if not NOT_AGGREGATED.intersection(clock):
        at = len(out.stored)  # where the reading goes
        if known is None or _into_windows(state, series, reading, t_us, batch, config, at):
            # Late for a window, or older than what the series remembers: it might be a
            # repeat, and a window could count it twice.
            flags.append(LATE)
        elif in_order:
            _alerts(series, reading, t_us, config, out)
    out.stored.append(_as_stored(reading, flags, batch.info))


def _series_of(state: SensorState, reading: Reading) -> Series:
    """The reading's series in the sensor's state (new if none)."""
    if not state.sensor_id:  # a new state: names shared by every state (memory)
        state.tenant, state.sensor_id = intern(reading.tenant), reading.sensor_id
    key = series_key(reading.quantity, reading.probe)
    series = state.series.get(key)
    if series is None:
        series = state.series[key] = Series(
            intern(reading.quantity), reading.probe, intern(reading.unit)
        )
    return series


def _refusal(reading: Reading, batch: _SensorBatch) -> tuple[str, str] | None:
    """Why the reading is a dead letter (reason, detail), or None."""
    if batch.refuse_unknown:
        return "unregistered_sensor", f"{reading.key.decode()} is not in the registry"
    reason = quality.out_of_range(reading)
    return None if reason is None else ("out_of_range", reason)


def _note_receipt(
    state: SensorState, received_us: int, batch: _SensorBatch, config: StreamsConfig, out: Outcome
) -> None:
    """A sensor heard from (at ``received_us``): its stale episode closes; its last receipt
    time moves on."""
    if state.stale_since_us is not None:
        out.alerts.append(
            stale_event(
                (state.tenant, state.sensor_id),
                state.stale_since_us,
                received_us,
                batch.interval * config.stale_factor,
            )
        )
        state.stale_since_us = None
    if state.last_received_us is None or received_us > state.last_received_us:
        state.last_received_us = received_us


def _into_windows(
    state: SensorState,
    series: Series,
    reading: Reading,
    t_us: int,
    batch: _SensorBatch,
    config: StreamsConfig,
    at: int,
) -> bool:
    """Note a reading for its series' windows (its place in ``Outcome.stored``: ``at``); True
    when it was late for any."""
    return _aggregate(series, t_us, reading.value, config, _pending_of(state, series, batch), at)


def _pending_of(state: SensorState, series: Series, batch: _SensorBatch) -> _Pending:
    """The values of the series that reach its windows in this batch (new at its first)."""
    key = series_key(series.quantity, series.probe)
    entry = batch.touched.get(key)
    if entry is None:
        head = SeriesHead(
            state.tenant,
            "sensor",
            state.sensor_id,
            series.quantity,
            series.probe,
            series.unit,
            batch.feeds,
        )
        entry = batch.touched[key] = (series, head, _Pending())
    return entry[2]


def _take_run(
    state: SensorState,
    readings: list[Reading],
    start: int,
    batch: _SensorBatch,
    config: StreamsConfig,
    out: Outcome,
) -> int:
    """Take the run of readings from ``start`` on that need none of the per-reading cases at
    once; how many (0: ``readings[start]`` goes through :func:`_process_reading`).

    The usual case, many readings of one series in one message: each newer than anything the
    series knows (no duplicate, none late, in order), in range, its clock plausible. Each
    gets the flags, windows and alerts :func:`_process_reading` would give it and leaves the
    series as it would have (the dedupe memory's answers, not when it drops, are the same),
    the bookkeeping done once for the run: a fifth of the worker's time at 50 readings a
    message (docs/performance.md). The readings are looked at before the state changes; the
    first that does not fit, or that raises, ends the run and goes the per-reading way.
    """
    first = readings[start]
    if start + 1 == len(readings) or not _same_series(first, readings[start + 1]):
        return 0  # a reading alone: the per-reading way costs less than setting up a run
    series = state.series.get(series_key(first.quantity, first.probe))
    if series is None or batch.refuse_unknown:
        return 0
    run = _Run(state, series, batch, config)
    try:
        for at in range(start, len(readings)):
            if not run.take(readings[at]):
                break
    except Exception:  # the per-reading way dead-letters it, with the reason
        log.debug("a run of %s ends at a reading that raised", state.sensor_id, exc_info=True)
    if not run.stored:
        return 0
    run.commit(out)
    return len(run.stored)


def _same_series(reading: Reading, other: Reading) -> bool:
    return reading.quantity == other.quantity and reading.probe == other.probe


class _Run:
    """A run of one series' readings taken at once (:func:`_take_run`): what each reading
    changes is gathered by :meth:`take`, and applied to the state by :meth:`commit`."""

    def __init__(
        self, state: SensorState, series: Series, batch: _SensorBatch, config: StreamsConfig
    ) -> None:
        self.state, self.series, self.batch, self.config = state, series, batch, config
        self.after = _newest_known(series)  # every reading of the run is newer
        self.memory = series.memory
        self.rules = config.rules_by_quantity.get(series.quantity, ())
        self.episodes = series.episodes or {}
        self.given = [UNREGISTERED] if batch.unregistered else []
        info = batch.info
        # Whether a reading without flags is stored as it came (:func:`_as_stored`): the run
        # adds no flag, and the registry no location.
        self.as_it_came = not self.given and (info is None or info.location is None)
        self.times: list[int] = []
        self.values: list[float] = []
        self.stored: list[Reading] = []
        self.events: list[AlertEvent] = []
        self.received: tuple[datetime | None, int] = (None, 0)  # the last receipt time, in µs
        self.receipts: list[int] = []  # the first receipt and the newest, µs
        # What the run's unit says (a run's readings share it but for odd devices): its
        # physical range, and whether a range's quantity is in another unit.
        self.unit: tuple[str | None, Range | None, bool] = (None, None, False)

    def take(self, reading: Reading) -> bool:
        """Add the reading to the run, or False if it does not fit."""
        series = self.series
        if reading.quantity != series.quantity or reading.probe != series.probe:
            return False
        t_us = epoch_us(reading.observed_at)
        received_us = self._received_us(reading)
        bounds = self._fits(reading, t_us, received_us)
        if bounds is False:
            return False
        sequence, memory = quality.sequence_flags_within(
            bounds, reading.value, t_us, self.memory, self.batch.interval_us, self.config.quality
        )
        if not sequence and not reading.quality_flags and self.as_it_came:
            stored = reading  # the usual case, without building the flags
        else:
            stored = _as_stored(
                reading, [*reading.quality_flags, *self.given, *sequence], self.batch.info
            )
        # From here on the run changes: the alert rules last among what may raise (they
        # change their episodes in place, as _process_reading's do).
        self._alerts(reading, t_us)
        self.memory = memory
        receipts = self.receipts
        if not receipts:
            receipts += (received_us, received_us)
        elif received_us > receipts[1]:
            receipts[1] = received_us
        self.stored.append(stored)
        self.times.append(t_us)
        self.values.append(reading.value)
        self.after = t_us
        return True

    def _fits(self, reading: Reading, t_us: int, received_us: int) -> Range | Literal[False] | None:
        """False if the reading does not fit the run, else its physical range (or None).

        It fits when newer than all the series knows: not a duplicate, not below what it
        remembers (its floor is never above the newest time it remembers), in order, late for
        no window; not a dead letter (in range); no clock flag (those keep a reading out of
        windows and alerts): :func:`quality.clock_flags` in µs, the unit's checks once a run.
        """
        if self.after is not None and t_us <= self.after:
            return False
        rules = self.config.quality
        if t_us - received_us > rules.max_future_us or received_us - t_us > rules.max_age_us:
            return False
        unit, bounds, mismatch = self.unit
        if reading.unit != unit:
            unit, quantity = reading.unit, self.series.quantity
            bounds, mismatch = (
                quality.range_of(quantity, unit),
                quality.unit_mismatch(quantity, unit),
            )
            self.unit = (unit, bounds, mismatch)
        if mismatch or (bounds is not None and not bounds.low <= reading.value <= bounds.high):
            return False
        return bounds

    def _alerts(self, reading: Reading, t_us: int) -> None:
        episodes, sensor = self.episodes, (self.state.tenant, self.state.sensor_id)
        for rule in self.rules:
            episode, event = evaluate(rule, episodes.get(rule.key), t_us, reading.value, sensor)
            if episode is None:
                episodes.pop(rule.key, None)
            else:
                episodes[rule.key] = episode
            if event is not None:
                self.events.append(event)

    def _received_us(self, reading: Reading) -> int:
        # A message's readings share their receipt time: converted once.
        at, received_us = self.received
        if reading.received_at != at:
            received_us = epoch_us(reading.received_at)
            self.received = (reading.received_at, received_us)
        return received_us

    def commit(self, out: Outcome) -> None:
        """The run's times remembered, its values noted for the windows, its readings stored,
        its alerts raised (a stale episode closed by its first receipt)."""
        series, batch, config = self.series, self.batch, self.config
        for t_us in self.times:
            eventtimes.add(series, t_us)
        _keep_to_cap(series, config)
        series.memory = self.memory
        series.episodes = self.episodes or None
        for received_us in self.receipts:
            _note_receipt(self.state, received_us, batch, config, out)
        out.alerts += self.events
        pending = _pending_of(self.state, series, batch)
        at = len(out.stored)
        pending.times += self.times
        pending.values += self.values
        pending.stored_at += range(at, at + len(self.stored))
        series.mark_us = self.times[-1]
        out.stored += self.stored


def _newest_known(series: Series) -> int | None:
    """The newest event time the series knows of: remembered, aggregated or compared."""
    known = [
        t
        for t in (
            eventtimes.nth_newest(series, 1) if series.times else None,
            series.mark_us,
            None if series.memory is None else series.memory.last_us,
        )
        if t is not None
    ]
    return max(known) if known else None


def _as_stored(reading: Reading, flags: list[str], info: SensorInfo | None) -> Reading:
    """The reading as stored: its quality flags, and the registry's location if it had none."""
    location = reading.location
    if location is None and info is not None and info.location is not None:
        location = info.location
    if not flags and location is reading.location:  # the usual case: stored as it came
        return reading
    unique_flags = tuple(dict.fromkeys(flags))
    if unique_flags == reading.quality_flags and location is reading.location:
        return reading
    return msgspec.structs.replace(reading, quality_flags=unique_flags, location=location)


def check_stale(
    state: SensorState, now_us: int, config: StreamsConfig
) -> tuple[SensorState, AlertEvent | None]:
    """Open a stale-sensor episode (in place) if the sensor has been silent too long."""
    if state.last_received_us is None or state.stale_since_us is not None:
        return state, None
    interval = timedelta(seconds=state.interval_s) if state.interval_s else config.default_interval
    silence = interval * config.stale_factor
    since = state.last_received_us + _us(silence)
    if now_us <= since:
        return state, None
    state.stale_since_us = since
    return state, stale_event((state.tenant, state.sensor_id), since, None, silence)


def silent_for_good(state: SensorState, now_us: int, config: StreamsConfig) -> bool:
    """True when the sensor has been silent long enough to be forgotten (or never spoke)."""
    heard = state.last_received_us
    return heard is None or now_us - heard > config.forget_silent_after_us


# --- districts --------------------------------------------------------------------------------


def member_key(sensor_id: str, probe: str | None) -> str:
    """A district member: a sensor, or one probe of it."""
    return sensor_id if probe is None else f"{sensor_id}{PROBE_SEPARATOR}{probe}"


def combine(window: DistrictWindow) -> Aggregate:
    """A district window's aggregate (the mean from its exact sum).

    ``last`` is the last value by event time; between members at the same time, that of the
    greatest member key.
    """
    total = window.sum if isinstance(window.sum, float) else exact_total(window.sum)
    return Aggregate(window.count, total / window.count, window.min, window.max, window.last)


DistrictRows = dict[bytes, tuple[int, list[list[SensorWindow]]]]


def district_rows(records: list[tuple[int, DistrictRecord]]) -> DistrictRows:
    """(partition, record)s of the district topic, split by the district state they update.

    Each state (``streams.state.district_key``: a district quantity at one window size) gets
    its source partition and, per record in topic order, that record's sensor windows for it.
    """
    rows: DistrictRows = {}
    for partition, record in records:
        per_row: dict[bytes, list[SensorWindow]] = {}
        for update in record.windows:
            key = district_key(record.tenant, record.district, update.quantity, update.window)
            per_row.setdefault(key, []).append(update)
        for key, windows in per_row.items():
            rows.setdefault(key, (partition, []))[1].append(windows)
    return rows


def new_district_state(key: bytes, partition: int, unit: str) -> DistrictState:
    """The empty state of a district row (its key says tenant/district/quantity/window)."""
    tenant, district, quantity, window = key.decode().split("/")
    return DistrictState(partition, tenant, district, quantity, window, unit)


def process_district(
    state: DistrictState,
    records: list[list[SensorWindow]],
    config: StreamsConfig,
    outcome: Outcome | None = None,
) -> tuple[DistrictState, Outcome]:
    """Apply forwarded sensor windows to a district quantity's state at one size (in place).

    ``records`` are the sensor windows for this state from each district record, in topic
    order. A member's window aggregate replaces the one kept when its count is larger: a
    sensor's window only grows, so a replay (equal or smaller counts) changes nothing. A
    member whose watermark was already past a window's end plus the allowed lateness before a
    record can no longer change that window: its updates for it (replays) are ignored. A
    window is final once every member active within the dedupe horizon is past it, and is
    kept for the dedupe horizon behind the newest member; an update for a window already
    forgotten is not applied (counted in ``district_late``).
    """
    out = outcome if outcome is not None else Outcome()
    size = dict(config.windows).get(state.window)
    if size is None:  # a window size no longer configured
        return state, out
    head = SeriesHead(state.tenant, "district", state.district, state.quantity, None, state.unit)
    for updates in records:
        before = dict(state.marks)
        for update in updates:
            member = intern(member_key(update.sensor_id, update.probe))  # one copy for all rows
            start = update.aggregate.start
            if update.mark_us > state.marks.get(member, update.mark_us - 1):
                state.marks[member] = update.mark_us
            seen = before.get(member)
            if seen is not None and is_late(start, size, config.lateness_us, seen):
                continue  # its part of that window was final before this record: a replay
            if state.floor is not None and start < state.floor:
                out.district_late += 1
                continue
            window = _district_window(state, start)
            if _replace_member(state, window, member, update.aggregate):
                key = (state.tenant, state.district, state.quantity, state.window, start)
                out.touched[key] = _Touched(head, state.window, start, window, None)
    _close_district_windows(state, size, config)
    return state, out


def _replace_member(
    state: DistrictState, window: DistrictWindow, member: str, aggregate: Window
) -> bool:
    """Put a member's window aggregate in place of its older one; False if not newer."""
    slot = state.members.get(member)
    if slot is None:
        slot = state.members[member] = len(state.members)
    counts, sums = window.counts, window.sums
    if slot >= len(counts):  # room for every member known, not one more at a time
        grow = max(slot + 1, len(state.members)) - len(counts)
        counts.extend(array("q", bytes(8 * grow)))
        sums.extend(array("d", bytes(8 * grow)))
    old_count = counts[slot]
    if aggregate.count <= old_count:
        return False
    partials = aggregate.partials()
    total = [window.sum] if isinstance(window.sum, float) else window.sum
    merge_exact(total, partials)
    if old_count:  # take the member's previous part out, exactly
        lows = window.extra.get(slot, []) if window.extra is not None else []
        merge_exact(total, [-p for p in (*lows, sums[slot])])
    window.sum = total[0] if len(total) == 1 else total
    window.count += aggregate.count - old_count
    # A larger count of a sensor window holds the smaller one's values: min, max, last grow.
    window.min = min(window.min, aggregate.min)
    window.max = max(window.max, aggregate.max)
    if (aggregate.last_us, member) > (window.last_us, window.last_member):
        window.last_us, window.last, window.last_member = aggregate.last_us, aggregate.last, member
    counts[slot], sums[slot] = aggregate.count, partials[-1]
    if len(partials) > 1:
        if window.extra is None:
            window.extra = {}
        window.extra[slot] = partials[:-1]
    elif window.extra is not None:
        window.extra.pop(slot, None)
    return True


def _district_window(state: DistrictState, start: int) -> DistrictWindow:
    windows = state.windows
    if windows and windows[-1].start == start:
        return windows[-1]
    at = bisect.bisect_left(windows, start, key=_district_start)
    if at < len(windows) and windows[at].start == start:
        return windows[at]
    window = DistrictWindow(start)
    windows.insert(at, window)
    return window


def _district_start(window: DistrictWindow) -> int:
    return window.start


def _close_district_windows(state: DistrictState, size: int, config: StreamsConfig) -> None:
    """Forget what no member can change any more: member parts, then whole windows."""
    if not state.marks:
        return
    newest = max(state.marks.values())
    idle = config.dedupe_horizon_us
    active = [t for t in state.marks.values() if t >= newest - idle]
    # Kept until final for every active member, and for the dedupe horizon behind the newest:
    # a member seen for the first time (another partition, far behind) may still report.
    limit = min(min(active) - config.lateness_us - size, newest - idle - size)
    final = 0
    while final < len(state.windows) and state.windows[final].start <= limit:
        final += 1
    if final:
        del state.windows[:final]
    if state.floor is None or limit + 1 > state.floor:
        state.floor = limit + 1
    # A member whose watermark is below the floor sent nothing the windows kept hold.
    state.marks = {m: t for m, t in state.marks.items() if t >= state.floor}
    # Once every member known is past a window, no update can change it: its members' parts
    # are no longer needed (a replay of one is recognised by the member's watermark).
    slowest = min(state.marks.values())
    for window in state.windows:
        if not is_late(window.start, size, config.lateness_us, slowest):
            break
        if window.counts:
            window.counts, window.sums, window.extra = array("q"), array("d"), None
