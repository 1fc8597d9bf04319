"""Receipt times that never repeat: max(now, previous + 1 µs) per ingestor (pure).

A reading without a time of its own is observed at its message's receipt time, and an
observation is (tenant, sensor, probe, quantity, time): two publications of the same bytes must
be two observations, so no two messages of one ingestor may share a receipt time, even when
the clock is coarse, steps back (NTP) or two messages arrive within a microsecond.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

TICK = timedelta(microseconds=1)  # InfluxDB keeps nanoseconds; Python datetimes microseconds


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ReceiptClock:
    """Hands out strictly increasing UTC times, close to the wall clock."""

    def __init__(self, now: Callable[[], datetime] = _utc_now) -> None:
        self._now = now
        self._last: datetime | None = None

    def next(self) -> datetime:
        """The receipt time of the next message: now, or just after the previous one."""
        moment = self._now()
        if self._last is not None and moment <= self._last:
            moment = self._last + TICK
        self._last = moment
        return moment
