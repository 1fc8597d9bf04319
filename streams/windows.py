"""Tumbling-window running aggregates on event time, with allowed lateness (pure).

A window holds the running aggregate of the values that reached it: count, the exact sum as
Shewchuk partials (:mod:`streams.exact`), min, max, and the last value by event time. No
per-reading members: a window costs the same whether one reading reached it or a thousand.
The mean is the exact sum rounded once, divided by the count, so the aggregate written for a
window equals the offline computation (:func:`offline`) in whatever order its values came.
That a value is added once is the caller's business: the stream worker drops duplicates
before they reach a window (``streams.pipeline``).

Lateness: a series has a watermark, the newest event time of it that was aggregated. A window
``[start, start + size)`` accepts values while ``start + size + lateness > watermark``; a
value after that is *late* for it (stored raw, flagged, not aggregated). A window is dropped
from the state once it is final (:func:`prune`); its last aggregate has been written.
"""

from __future__ import annotations

import bisect
import math
import re
from datetime import UTC, datetime, timedelta

import msgspec

from streams.exact import add_exact, exact_total

_SIZE = re.compile(r"^([1-9][0-9]*)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
US = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
    return _EPOCH + timedelta(microseconds=t_us)


class Aggregate(msgspec.Struct, frozen=True, gc=False):
    """Count, mean, min, max and last (by event time) value of a window."""

    count: int
    mean: float
    min: float
    max: float
    last: float


class Window(msgspec.Struct, array_like=True, gc=False):
    """The running aggregate of one window, changed in place as values arrive."""

    start: int
    count: int
    sum: float | list[float]  # exact: Shewchuk partials (one float while one is enough)
    min: float
    max: float
    last_us: int
    last: float

    def aggregate(self) -> Aggregate:
        """The window's aggregate (the mean from the exact sum)."""
        total = self.sum if isinstance(self.sum, float) else exact_total(self.sum)
        return Aggregate(self.count, total / self.count, self.min, self.max, self.last)

    def partials(self) -> list[float]:
        """The exact sum as a list of partials."""
        return [self.sum] if isinstance(self.sum, float) else list(self.sum)


def new_window(start: int, t_us: int, value: float) -> Window:
    """A window holding one value."""
    return Window(start, 1, value, value, value, t_us, value)


def add_value(window: Window, t_us: int, value: float) -> None:
    """Add one value observed at ``t_us`` to a window, in place."""
    window.count += 1
    window.sum = add_to_sum(window.sum, value)
    if value < window.min:
        window.min = value
    if value > window.max:
        window.max = value
    if t_us > window.last_us:
        window.last_us, window.last = t_us, value


def add_to_sum(total: float | list[float], value: float) -> float | list[float]:
    """An exact sum plus a value: one float while the sum is exactly one, else partials."""
    if isinstance(total, float):
        # One step of Shewchuk's algorithm: most sums of sensor values stay one float.
        big, small = (total, value) if abs(total) >= abs(value) else (value, total)
        high = big + small
        low = small - (high - big)
        return high if not low else [low, high]
    add_exact(total, value)
    return total


def window_for(windows: list[Window], start: int, t_us: int, value: float) -> Window:
    """Add a value to the window at ``start`` of a start-ordered list (new if absent)."""
    # Readings mostly arrive in order: the newest window is the usual one.
    if windows and windows[-1].start == start:
        window = windows[-1]
    else:
        at = bisect.bisect_left(windows, start, key=_start)
        if at < len(windows) and windows[at].start == start:
            window = windows[at]
        else:
            window = new_window(start, t_us, value)
            windows.insert(at, window)
            return window
    add_value(window, t_us, value)
    return window


def _start(window: Window) -> int:
    return window.start


def is_late(start: int, size_us: int, lateness_us: int, mark_us: int | None) -> bool:
    """True when the window at ``start`` no longer accepts values (watermark ``mark_us``)."""
    return mark_us is not None and start + size_us + lateness_us <= mark_us


def prune(windows: list[Window], size_us: int, lateness_us: int, mark_us: int) -> None:
    """Drop the windows that are final at watermark ``mark_us``, in place."""
    final = 0
    while final < len(windows) and is_late(windows[final].start, size_us, lateness_us, mark_us):
        final += 1
    if final:
        del windows[:final]


def offline(points: list[tuple[str, int, float]], size_us: int) -> dict[int, Aggregate]:
    """Aggregates of ``(member, t_us, value)`` computed all at once: the reference result.

    A member (``time`` for one sensor's series, ``sensor@time`` for a district) counts once;
    ``last`` is the value of the latest event time, between equal times of the greatest member.
    """
    windows: dict[int, dict[str, tuple[int, float]]] = {}
    for member, t_us, value in points:
        windows.setdefault(window_start(t_us, size_us), {}).setdefault(member, (t_us, value))
    out = {}
    for start, members in windows.items():
        ordered = sorted((t_us, key, value) for key, (t_us, value) in members.items())
        values = [value for _, _, value in ordered]
        out[start] = Aggregate(
            count=len(values),
            mean=math.fsum(values) / len(values),
            min=min(values),
            max=max(values),
            last=values[-1],
        )
    return out
