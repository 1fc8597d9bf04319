"""What the worker does with the readings of one sensor, and of one district (pure).

:func:`process_sensor` takes a sensor's state and a list of its readings in topic order and
returns the new state and everything to emit: readings to store (enriched, with quality
flags), dead letters, duplicates dropped, running window aggregates, alert events, and the
readings to forward to district aggregation. :func:`process_district` does the same for the
district series. The adapter (``streams.app``) loads and saves the states and does the I/O.

Order of a reading's checks: duplicate (message id, then sensor+quantity+time) → registry
policy → physical range (dead letter) → flags → windows → alert rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, Field

from streams import quality
from streams.alerts import (
    AlertEvent,
    AlertRule,
    Episode,
    evaluate,
    rules_from_settings,
    stale_event,
)
from streams.quality import QualityRules, SeriesMemory, epoch_us
from streams.windows import Aggregate, SeriesWindows, add, aggregate, parse_window
from urbanpulse.flags import FUTURE, LATE, TOO_OLD, UNIT_MISMATCH, UNREGISTERED
from urbanpulse.model import Reading
from urbanpulse.registry import SensorInfo
from urbanpulse.settings import StreamsSettings

# Readings with these flags are stored but kept out of aggregates and alerts.
NOT_AGGREGATED = frozenset({FUTURE, TOO_OLD, UNIT_MISMATCH})


Head = tuple[str, Literal["sensor", "district"], str, str]  # tenant, scope, subject, quantity


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
    default_interval: timedelta = timedelta(minutes=5)
    rules: tuple[AlertRule, ...] = ()
    stale_factor: float = 3.0
    unknown_sensors: Literal["accept", "deadletter"] = "accept"

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
            default_interval=timedelta(seconds=settings.expected_interval_s),
            rules=rules_from_settings(settings.alert_rules),
            stale_factor=settings.stale_factor,
            unknown_sensors=settings.unknown_sensors,
        )


class QuantityState(BaseModel):
    """One series (a sensor's quantity, or a district's quantity)."""

    unit: str = ""
    memory: SeriesMemory | None = None
    seen: dict[int, str] = Field(default_factory=dict)  # event time µs → message id
    windows: dict[str, SeriesWindows] = Field(default_factory=dict)
    episodes: dict[str, Episode] = Field(default_factory=dict)


class SensorState(BaseModel):
    """Everything the worker remembers about one sensor (a table row, keyed like Kafka)."""

    partition: int | None = None
    tenant: str = ""
    sensor_id: str = ""
    interval_s: float | None = None
    seen_ids: dict[str, int] = Field(default_factory=dict)  # message id → event time µs
    newest_us: int | None = None
    last_received_us: int | None = None
    stale_since_us: int | None = None
    quantities: dict[str, QuantityState] = Field(default_factory=dict)


class DistrictState(BaseModel):
    """Window state of one district's quantities."""

    partition: int | None = None
    quantities: dict[str, QuantityState] = Field(default_factory=dict)


@dataclass(frozen=True)
class AggregateUpdate:
    """The running aggregate of one window, to be written (and overwritten) in InfluxDB."""

    tenant: str
    scope: Literal["sensor", "district"]
    subject: str  # sensor id or district
    quantity: str
    window: str
    start_us: int
    unit: str
    value: Aggregate

    @property
    def key(self) -> tuple[str, str, str, str, str, int]:
        """Identifies the InfluxDB point."""
        return (self.tenant, self.scope, self.subject, self.quantity, self.window, self.start_us)


@dataclass
class Outcome:
    """Everything a batch produced, for the adapter to write and send."""

    stored: list[Reading] = field(default_factory=list)
    dead_letters: list[tuple[Reading, str, str]] = field(default_factory=list)
    duplicates: int = 0
    aggregates: dict[tuple[str, str, str, str, str, int], AggregateUpdate] = field(
        default_factory=dict
    )
    alerts: list[AlertEvent] = field(default_factory=list)
    to_district: list[tuple[str, Reading]] = field(default_factory=list)

    def merge(self, other: Outcome) -> None:
        """Add another outcome's results to this one (later aggregates win)."""
        self.stored += other.stored
        self.dead_letters += other.dead_letters
        self.duplicates += other.duplicates
        self.aggregates.update(other.aggregates)
        self.alerts += other.alerts
        self.to_district += other.to_district


def _window_all(
    series: QuantityState,
    member: tuple[str, str],
    t_us: int,
    value: float,
    config: StreamsConfig,
) -> list[tuple[str, int]]:
    """Add a value to every window size; return the windows touched (start -1: too late).

    ``member`` is (member key, source sensor); a district (several sources) keeps windows for
    sensors lagging up to the dedupe horizon, a sensor's own series needs no such margin.
    """
    key, source = member
    idle_us = config.dedupe_horizon_us if source else None
    touched = []
    for name, size_us in config.windows:
        windows = series.windows.setdefault(name, SeriesWindows())
        start = add(
            windows,
            key,
            t_us,
            value,
            size_us,
            config.lateness_us,
            source,
            idle_us,
        )
        touched.append((name, -1 if start is None else start))
    return touched


def _emit(
    outcome: Outcome,
    series: QuantityState,
    touched: list[tuple[str, int]],
    head: Head,
) -> None:
    tenant, scope, subject, quantity = head
    for name, start in touched:
        members = series.windows[name].windows.get(start) if start >= 0 else None
        if members:
            update = AggregateUpdate(
                tenant, scope, subject, quantity, name, start, series.unit, aggregate(members)
            )
            outcome.aggregates[update.key] = update


def _prune_seen(state: SensorState, horizon_us: int) -> None:
    if state.newest_us is None:
        return
    limit = state.newest_us - horizon_us
    state.seen_ids = {m: t for m, t in state.seen_ids.items() if t >= limit}
    for series in state.quantities.values():
        series.seen = {t: m for t, m in series.seen.items() if t >= limit}


def process_sensor(
    state: SensorState,
    readings: list[Reading],
    info: SensorInfo | None,
    registry_enabled: bool,
    config: StreamsConfig,
) -> tuple[SensorState, Outcome]:
    """Check, dedupe, enrich, aggregate and alert one sensor's readings (in topic order)."""
    state = state.model_copy(deep=True)
    outcome = Outcome()
    if info is not None:
        state.interval_s = info.interval_s
    interval = timedelta(seconds=state.interval_s) if state.interval_s else config.default_interval
    for reading in readings:
        state.tenant, state.sensor_id = reading.tenant, reading.sensor_id
        t_us = epoch_us(reading.observed_at)
        series = state.quantities.setdefault(reading.quantity, QuantityState(unit=reading.unit))
        if reading.message_id in state.seen_ids or t_us in series.seen:
            outcome.duplicates += 1
            continue
        if info is None and registry_enabled and config.unknown_sensors == "deadletter":
            outcome.dead_letters.append(
                (reading, "unregistered_sensor", f"{reading.key.decode()} is not in the registry")
            )
            continue
        reason = quality.out_of_range(reading)
        if reason is not None:
            outcome.dead_letters.append((reading, "out_of_range", reason))
            continue
        state.seen_ids[reading.message_id] = t_us
        series.seen[t_us] = reading.message_id
        received_us = epoch_us(reading.received_at)
        if state.stale_since_us is not None:
            outcome.alerts.append(
                stale_event(
                    (reading.tenant, reading.sensor_id),
                    state.stale_since_us,
                    received_us,
                    interval * config.stale_factor,
                )
            )
            state.stale_since_us = None
        state.last_received_us = max(state.last_received_us or received_us, received_us)

        flags = list(reading.quality_flags)
        if info is None and registry_enabled:
            flags.append(UNREGISTERED)
        clock = quality.clock_flags(reading, config.quality)
        flags += clock
        in_order = series.memory is None or t_us > series.memory.last_us
        sequence, series.memory = quality.sequence_flags(
            reading, series.memory, interval, config.quality
        )
        flags += sequence
        aggregated = not NOT_AGGREGATED.intersection(clock)
        if aggregated:
            touched = _window_all(series, (str(t_us), ""), t_us, reading.value, config)
            if any(start < 0 for _, start in touched):
                flags.append(LATE)
            head: Head = (reading.tenant, "sensor", reading.sensor_id, reading.quantity)
            _emit(outcome, series, touched, head)
            if in_order:
                for rule in config.rules:
                    if rule.quantity == reading.quantity:
                        episode, event = evaluate(
                            rule,
                            series.episodes.get(rule.key),
                            t_us,
                            reading.value,
                            (reading.tenant, reading.sensor_id),
                        )
                        if episode is None:
                            series.episodes.pop(rule.key, None)
                        else:
                            series.episodes[rule.key] = episode
                        if event is not None:
                            outcome.alerts.append(event)
        state.newest_us = max(state.newest_us or t_us, t_us)

        update: dict[str, object] = {"quality_flags": tuple(dict.fromkeys(flags))}
        if reading.location is None and info is not None and info.location is not None:
            update["location"] = info.location
        stored = reading.model_copy(update=update)
        outcome.stored.append(stored)
        # Only open sensors feed district aggregates, which the API publishes: a district
        # with one restricted sensor would otherwise publish that sensor's values.
        if aggregated and info is not None and info.district is not None and info.privacy == "open":
            outcome.to_district.append((info.district, stored))
    _prune_seen(state, config.dedupe_horizon_us)
    return state, outcome


def check_stale(
    state: SensorState, now_us: int, config: StreamsConfig
) -> tuple[SensorState, AlertEvent | None]:
    """Open a stale-sensor episode if the sensor has been silent too long."""
    if state.last_received_us is None or state.stale_since_us is not None:
        return state, None
    interval = timedelta(seconds=state.interval_s) if state.interval_s else config.default_interval
    silence = interval * config.stale_factor
    since = state.last_received_us + _us(silence)
    if now_us <= since:
        return state, None
    state = state.model_copy(update={"stale_since_us": since})
    return state, stale_event((state.tenant, state.sensor_id), since, None, silence)


def process_district(
    state: DistrictState,
    tenant: str,
    district: str,
    readings: list[Reading],
    config: StreamsConfig,
) -> tuple[DistrictState, Outcome]:
    """Aggregate readings forwarded for one district (members keyed sensor@time)."""
    state = state.model_copy(deep=True)
    outcome = Outcome()
    for reading in readings:
        t_us = epoch_us(reading.observed_at)
        series = state.quantities.setdefault(reading.quantity, QuantityState(unit=reading.unit))
        member = (f"{reading.sensor_id}@{t_us}", reading.sensor_id)
        touched = _window_all(series, member, t_us, reading.value, config)
        _emit(outcome, series, touched, (tenant, "district", district, reading.quantity))
    return state, outcome
