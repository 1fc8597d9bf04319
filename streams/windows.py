"""Tumbling-window aggregates on event time, with allowed lateness (pure).

A window keeps its *members*: ``member key → (event time µs, value)``. The aggregate (count,
mean, min, max, last) is computed from the members in a canonical order, so it does not depend
on the order the readings arrived in, and adding a member twice changes nothing. That makes the
aggregate that is written after each update safe under replays, restarts and reordering: the
last write of a window is the aggregate of everything that reached it, exactly what an offline
computation gives. The member key is the observation time for one sensor's series, and
``sensor@time`` for a district's series.

Lateness: each sensor feeding a series has a watermark, the newest event time of it that was
aggregated. A window ``[start, start + size)`` accepts a sensor's readings while
``start + size + lateness > watermark``; a reading after that is *late* (stored raw, flagged,
not aggregated). A window is dropped from the state when it is final for every sensor still
reporting (a district's sensors may be processed at different paces, on different partitions).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

_SIZE = re.compile(r"^([1-9][0-9]*)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
US = 1_000_000


def parse_window(name: str) -> timedelta:
    """The length of a window named like ``30s``, ``1m``, ``15m``, ``1h`` or ``1d``."""
    match = _SIZE.match(name)
    if match is None:
        raise ValueError(f"window {name!r} is not a number followed by s, m, h or d")
    size = timedelta(seconds=int(match.group(1)) * _UNIT_S[match.group(2)])
    if timedelta(days=1) % size:
        raise ValueError(f"window {name!r} does not divide a day evenly")
    return size


def window_start(t_us: int, size_us: int) -> int:
    """Start (µs since the epoch) of the tumbling window holding event time ``t_us``."""
    return t_us - t_us % size_us


def as_datetime(t_us: int) -> datetime:
    """Microseconds since the epoch as an aware UTC datetime."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=t_us)


@dataclass(frozen=True)
class Aggregate:
    """Count, mean, min, max and last (by event time) value of a window."""

    count: int
    mean: float
    min: float
    max: float
    last: float


def aggregate(members: dict[str, tuple[int, float]]) -> Aggregate:
    """The aggregate of a window's members, independent of their order."""
    if not members:
        raise ValueError("an empty window has no aggregate")
    ordered = sorted((t_us, key, value) for key, (t_us, value) in members.items())
    values = [value for _, _, value in ordered]
    return Aggregate(
        count=len(values),
        mean=math.fsum(values) / len(values),
        min=min(values),
        max=max(values),
        last=values[-1],
    )


class SeriesWindows(BaseModel):
    """The open windows of one series at one window size, and the watermark of each source."""

    marks: dict[str, int] = Field(default_factory=dict)  # source → newest event time µs
    windows: dict[int, dict[str, tuple[int, float]]] = Field(default_factory=dict)


def add(
    state: SeriesWindows,
    member: str,
    t_us: int,
    value: float,
    size_us: int,
    lateness_us: int,
    source: str = "",
    idle_us: int | None = None,
) -> int | None:
    """Add a member to its window (in place); return the window start, or None if late.

    Lateness is judged against the watermark of the member's ``source`` (its sensor), so a
    district series gives the same result however its sensors' readings interleave, as long as
    none lags more than ``idle_us`` behind the newest: with ``idle_us`` set, a window is dropped
    once it is final for every source seen within ``idle_us`` and ends ``idle_us`` before the
    newest event time. A member already present keeps its first value.
    """
    start = window_start(t_us, size_us)
    mark = state.marks.get(source)
    if mark is not None and start + size_us + lateness_us <= mark:
        return None
    state.windows.setdefault(start, {}).setdefault(member, (t_us, value))
    if mark is None or t_us > mark:
        state.marks[source] = t_us
        newest = max(state.marks.values())
        limit = min(state.marks.values()) - lateness_us - size_us
        if idle_us is not None:
            # keep windows for sources not seen yet (or lagging) up to idle_us behind
            state.marks = {k: m for k, m in state.marks.items() if m >= newest - idle_us}
            limit = min(limit, newest - idle_us - size_us)
        for old in [s for s in state.windows if s <= limit]:
            del state.windows[old]
    return start


def offline(points: list[tuple[str, int, float]], size_us: int) -> dict[int, Aggregate]:
    """Aggregates of ``(member, t_us, value)`` computed all at once: the reference result."""
    windows: dict[int, dict[str, tuple[int, float]]] = {}
    for member, t_us, value in points:
        windows.setdefault(window_start(t_us, size_us), {}).setdefault(member, (t_us, value))
    return {start: aggregate(members) for start, members in windows.items()}
