"""The event times a series remembers for duplicates, in half the bytes (pure).

A series remembers the event times it stored (µs since the epoch), sorted, at most
``dedupe_max_times`` of them (256 by default). For a sensor that reports every few seconds they
are the largest part of its state and of every snapshot of it: 2 kB at the cap as 64-bit
integers. While they span less than 2**32 µs (71 minutes) they are held here as unsigned
32-bit offsets from the series' ``base_us``: half that. That is the case of a sensor reporting
at least every 16 s (its 256 times fit in 71 minutes), the busy ones this is for. A slower
sensor's times span the two-hour dedupe horizon (120 of them at a reading a minute) and stay
64-bit, as before, until forgetting the oldest narrows them; a state saved before ``base_us``
existed holds 64-bit times too (``base_us`` None), and reads as before.

Everything here works on :class:`streams.state.Series`: ``len(series.times)`` is how many
times it holds, whichever form they are in (up to an eighth more than the cap: times below
the series' ``floor_us`` are forgotten but dropped in bulk, ``streams.pipeline._remember``).
"""

from __future__ import annotations

import bisect
from array import array

from streams.state import Series, Times

# Offsets from base_us must be below this: an unsigned 32-bit integer ("I" is 4 bytes wherever
# CPython runs on 32 or 64 bits).
SPAN = 1 << 32


def contains(series: Series, t_us: int) -> bool:
    """Whether the series remembers the event time ``t_us``."""
    times, base = series.times, series.base_us
    if base is not None:
        t_us -= base
        if not 0 <= t_us < SPAN:
            return False
    if not times or t_us > times[-1]:  # newer than any: the usual case, no search
        return False
    at = bisect.bisect_left(times, t_us)
    return times[at] == t_us


def add(series: Series, t_us: int) -> None:
    """Remember ``t_us`` (not remembered yet), in order."""
    times, base = series.times, series.base_us
    if not times:
        series.times, series.base_us = array("I", (0,)), t_us
        return
    if base is not None:
        if not 0 <= t_us - base < SPAN:
            _rebase(series, t_us)
            return
        t_us -= base
    if t_us > times[-1]:
        times.append(t_us)
    else:
        times.insert(bisect.bisect_left(times, t_us), t_us)


def forget_before(series: Series, t_us: int) -> None:
    """Forget the times before ``t_us``."""
    base = series.base_us
    cut = bisect.bisect_left(series.times, t_us if base is None else t_us - base)
    if cut:
        del series.times[:cut]
        _narrow(series)


def forget_oldest(series: Series, count: int) -> int:
    """Forget the ``count`` oldest times (at least one remembered); the newest of them."""
    newest = series.times[count - 1] + (series.base_us or 0)
    del series.times[:count]
    _narrow(series)
    return newest


def nth_newest(series: Series, n: int) -> int:
    """The ``n``-th newest remembered time (1: the newest; at least ``n`` remembered)."""
    return series.times[-n] + (series.base_us or 0)


def oldest(series: Series) -> int | None:
    """The oldest remembered time (None: none remembered)."""
    times = series.times
    return times[0] + (series.base_us or 0) if times else None


def absolute(series: Series) -> list[int]:
    """The remembered times, µs since the epoch, oldest first."""
    base = series.base_us or 0
    return [base + t for t in series.times]


def _rebase(series: Series, t_us: int) -> None:
    # A time below the base or a span past 32 bits: all of them re-expressed, offsets from
    # the oldest when they fit (once every 71 minutes for a busy sensor), else 64-bit.
    times = absolute(series)
    bisect.insort(times, t_us)
    series.times, series.base_us = _compact(times)


def _narrow(series: Series) -> None:
    # Only a series on 64-bit times can narrow: forgetting the oldest may have made it fit.
    times = series.times
    if series.base_us is None and times and times[-1] - times[0] < SPAN:
        series.times, series.base_us = _compact(list(times))


def _compact(times: list[int]) -> tuple[Times, int | None]:
    base = times[0]
    if times[-1] - base < SPAN:
        return array("I", [t - base for t in times]), base
    return array("q", times), None
