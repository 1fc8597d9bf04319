"""Alert rules and episodes (pure): thresholds held for a minimum duration, stale sensors.

An *episode* is one stretch of time in which a rule's condition holds. It opens once the
condition has held for the rule's minimum duration (event time) and closes at the first
reading that no longer meets it. Each episode gives two events, ``open`` and ``closed``, with
the same start time: InfluxDB keeps one point per episode (its time is the start, so the
closing write overwrites the opening one), and Kafka consumers see both.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import msgspec
from pydantic import BaseModel, ConfigDict

from streams.windows import as_datetime
from urbanpulse.influx_layout import STALE_RULE
from urbanpulse.settings import AlertRuleSettings

STALE = STALE_RULE
ALL_QUANTITIES = "all"  # the quantity tag of alerts about the whole sensor (stale)

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class AlertRule:
    """A threshold rule: ``quantity op value`` for at least ``min_duration``."""

    name: str
    quantity: str
    op: Literal[">", ">=", "<", "<="]
    value: float
    min_duration: timedelta = timedelta(0)
    message: str = ""

    @property
    def key(self) -> str:
        """Identifies the rule within a sensor's state."""
        return f"{self.name}|{self.quantity}"

    def breached(self, value: float) -> bool:
        """Whether a value meets the alert condition."""
        return _OPS[self.op](value, self.value)

    def worse(self, a: float, b: float) -> float:
        """The value further into alert territory (the episode's peak)."""
        return max(a, b) if self.op in (">", ">=") else min(a, b)

    def text(self) -> str:
        """The message people read."""
        held = f" for {self.min_duration}" if self.min_duration else ""
        return self.message or f"{self.quantity} {self.op} {self.value}{held}"


DEFAULT_RULES = (
    AlertRule(
        "pm2_5_who_24h",
        "pm2_5",
        ">",
        15.0,
        timedelta(hours=1),
        "PM2.5 above the WHO 24-hour guideline (15 ug/m3) for an hour",
    ),
    AlertRule(
        "noise_high",
        "noise_level",
        ">",
        70.0,
        timedelta(minutes=15),
        "noise above 70 dB for 15 min",
    ),
    AlertRule("low_battery", "battery_level", "<", 15.0, message="battery below 15 %"),
    AlertRule("low_battery", "battery_voltage", "<", 3.3, message="battery below 3.3 V"),
)
"""Rules used when ``URBANPULSE_STREAMS__ALERT_RULES`` is empty (docs/streams.md)."""


def rules_from_settings(configured: Iterable[AlertRuleSettings] | None) -> tuple[AlertRule, ...]:
    """The rules of the settings, or the built-in ones when none are configured."""
    if configured is None:
        return DEFAULT_RULES
    return tuple(
        AlertRule(r.name, r.quantity, r.op, r.value, timedelta(seconds=r.min_duration_s), r.message)
        for r in configured
    )


class Episode(msgspec.Struct, array_like=True, gc=False):
    """A rule's condition holding on one series since ``started_us`` (part of its state)."""

    started_us: int
    peak: float
    opened: bool = False


class AlertEvent(BaseModel):
    """An alert episode opening or closing: the JSON on the alerts topic."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    sensor_id: str
    rule: str
    quantity: str
    state: Literal["open", "closed"]
    started_at: datetime
    ended_at: datetime | None
    value: float
    message: str

    def to_bytes(self) -> bytes:
        """Serialise as the JSON carried on the Kafka alerts topic."""
        return self.model_dump_json().encode()


def evaluate(
    rule: AlertRule,
    episode: Episode | None,
    t_us: int,
    value: float,
    subject: tuple[str, str],
) -> tuple[Episode | None, AlertEvent | None]:
    """Apply one in-order reading to a rule's episode (changed in place): it and any event."""
    tenant, sensor_id = subject

    def event(ep: Episode, state: Literal["open", "closed"], end: int | None) -> AlertEvent:
        return AlertEvent(
            tenant=tenant,
            sensor_id=sensor_id,
            rule=rule.name,
            quantity=rule.quantity,
            state=state,
            started_at=as_datetime(ep.started_us),
            ended_at=None if end is None else as_datetime(end),
            value=ep.peak,
            message=rule.text(),
        )

    if not rule.breached(value):
        if episode is not None and episode.opened:
            return None, event(episode, "closed", t_us)
        return None, None
    if episode is None:
        episode = Episode(started_us=t_us, peak=value)
    else:
        episode.peak = rule.worse(episode.peak, value)
    held_us = t_us - episode.started_us
    if not episode.opened and held_us >= rule.min_duration // timedelta(microseconds=1):
        episode.opened = True
        return episode, event(episode, "open", None)
    return episode, None


def stale_event(
    subject: tuple[str, str],
    started_us: int,
    ended_us: int | None,
    silence: timedelta,
) -> AlertEvent:
    """The event of a stale-sensor episode (open while ``ended_us`` is None)."""
    tenant, sensor_id = subject
    return AlertEvent(
        tenant=tenant,
        sensor_id=sensor_id,
        rule=STALE,
        quantity=ALL_QUANTITIES,
        state="open" if ended_us is None else "closed",
        started_at=as_datetime(started_us),
        ended_at=None if ended_us is None else as_datetime(ended_us),
        value=silence.total_seconds(),
        message=f"no reading for more than {silence}",
    )
