"""Tumbling-window running aggregates on event time, with allowed lateness (pure).

A window holds the running aggregate of the values that reached it: count, the exact sum as
Shewchuk partials (:mod:`streams.exact`), min, max, and the last value by event time. No
per-reading members: a window costs the same whether one reading reached it or a thousand,
and a series' open windows of one size are packed in one array (:class:`WindowSet`). The
mean is the exact sum rounded once, divided by the count, so the aggregate written for a
window equals the offline computation (:func:`offline`) in whatever order its values came.
That a value is added once is the caller's business: the stream worker drops duplicates
before they reach a window (``streams.pipeline``).

Lateness: a series has a watermark, the newest event time of it that was aggregated. A window
``[start, start + size)`` accepts values while ``start + size + lateness > watermark``; a
value after that is *late* for it (stored raw, flagged, not aggregated). A window is dropped
from the state once it is final and its last aggregate was written (:meth:`WindowSet.prune`).
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import msgspec

from streams.exact import SliceSums, add_all_exact, exact_total

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


# A window's aggregate as the snapshot writes it: start (µs), count, mean, min, max, last.
AggregateRow = tuple[int, int, float, float, float, float]


class Window(msgspec.Struct, array_like=True, gc=False):
    """The running aggregate of one window (what a sensor forwards to its district)."""

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


# --- the open windows of a series, packed ---------------------------------------------------

SLOT = 8  # doubles per window: start, count, sum, min, max, last_us, last, low
_START, _COUNT, _SUM, _MIN, _MAX, _LAST_US, _LAST, _LOW = range(SLOT)
OLD_SLOT = 7  # without low: the snapshots of workers before 2026-12-06 (``wide`` False)

if TYPE_CHECKING:
    Doubles = array[float]
else:  # array is not subscriptable at run time, where msgspec reads the annotation
    Doubles = array


def _doubles() -> Doubles:
    return array("d")


class WindowSet(msgspec.Struct, array_like=True, gc=False):
    """The open windows of one series at one size, packed: a sensor keeps a dozen of them.

    Each window is :data:`SLOT` doubles in ``slots``, ordered by start: start, count, the
    highest partial of its exact sum, min, max, the time of its last value and that value
    (times and counts are exact as doubles below 2**53 µs, the year 2255), and the second
    highest partial of the sum (``low``; 0.0: none, as a partial is never 0.0 unless it is
    the only one). A sum that needs more partials keeps the others in ``extra``, by window
    start. Most sums of decimal values need two: ``extra`` held every lower partial, a dict
    of lists of about 200 bytes per window, the largest part of the states of 10,000 sensors
    at a reading a second (memray); ``low`` holds the second in 8 bytes. ``wide`` tells the
    layout: a snapshot saved before ``low`` has no ``wide`` (False), and its windows are
    widened when decoded (:meth:`__post_init__`).

    ``unwritten`` is the earliest start of a window changed since its aggregate was last
    written (None: all written). The worker writes a sensor's window aggregates once per
    snapshot, not per batch; this one number is all it keeps until then (keeping each
    changed window's aggregate instead made ``benchmarks.worker_micro --rss`` 193 MB, not 137).
    A window that became final stays until it is written (:meth:`prune`).
    """

    size_us: int
    slots: Doubles = msgspec.field(default_factory=_doubles)
    extra: dict[int, list[float]] | None = None
    unwritten: int | None = None
    wide: bool = False  # last: older snapshots lack it

    def __post_init__(self) -> None:
        if not self.wide:  # built here (empty), or saved by an older worker
            self._widen()

    def __len__(self) -> int:
        return len(self.slots) // SLOT

    def _widen(self) -> None:
        """From :data:`OLD_SLOT` doubles per window, every lower partial in ``extra``."""
        old, extra = self.slots, dict(self.extra or {})
        slots = array("d")
        for at in range(0, len(old), OLD_SLOT):
            below = extra.pop(int(old[at]), None)
            slots.extend(old[at : at + OLD_SLOT])
            slots.append(below[-1] if below else 0.0)
            if below and len(below) > 1:
                extra[int(old[at])] = below[:-1]
        self.slots, self.extra, self.wide = slots, extra or None, True

    def starts(self) -> list[int]:
        """The open windows' starts."""
        return [int(t) for t in self.slots[_START::SLOT]]

    def add(self, t_us: int, value: float) -> int:
        """Add a value observed at ``t_us`` to its window (new if absent); its start."""
        start = t_us - t_us % self.size_us
        if not self._add_run(start, (t_us,), (value,)):
            # Values are at most 1e300 (urbanpulse.model), so only an absurd count gets here;
            # the reading is dead-lettered by the pipeline, the window stays as it was.
            raise OverflowError(f"the sum of the window at {start} µs would overflow")
        return start

    def add_all(
        self, times: Sequence[int], values: Sequence[float], sums: SliceSums | None = None
    ) -> tuple[list[int], list[int]]:
        """Add values observed at ``times`` (in topic order), each run of one window at once.

        The same result as :meth:`add` of each in turn (the exact sum keeps the mean exact
        in any order), at a fraction of the cost: a batch brings a sensor's values in runs of
        one window. Returns the starts of the windows reached, and the positions of the values
        left out because the window's sum would overflow (the window as it was without them).
        ``sums``: the values' slice sums, shared with the windows of the other sizes.
        """
        if len(times) == 1:  # one reading of the sensor in the batch: the common case
            start = times[0] - times[0] % self.size_us
            return [start], [] if self._add_run(start, times, values) else [0]
        size, starts, refused = self.size_us, [], []
        i, n = 0, len(times)
        while i < n:
            start = times[i] - times[i] % size
            end = start + size
            j = i + 1
            while j < n and start <= times[j] < end:
                j += 1
            total = None if sums is None or j - i == 1 else sums.of(i, j)
            if j - i == 1 or not self._add_run(start, times[i:j], values[i:j], total):
                refused += self._add_one_by_one(times, values, range(i, j))
            starts.append(start)
            i = j
        return starts, refused

    def _add_run(
        self,
        start: int,
        times: Sequence[int],
        values: Sequence[float],
        total: list[float] | None = None,
    ) -> bool:
        """Add values of the window at ``start``; False (nothing changed) if its sum would
        overflow. ``total``: their exact sum if known (partials, the caller's to give away)."""
        slots = self.slots
        at = len(slots) - SLOT
        while at >= 0 and slots[at] > start:  # mostly in order: the last window is the one
            at -= SLOT
        found = at >= 0 and slots[at] == start
        partials = self._partials(at, start) if found else []
        if total is None:
            add_all_exact(partials, values)
        elif partials:
            add_all_exact(partials, total)  # partials added as values: their sum, exactly
        else:
            partials = total
        if not math.isfinite(partials[-1]):
            return False
        if len(values) == 1:  # one value (:meth:`add`, most runs at one reading per message)
            newest, last = times[0], values[0]
            low = high = last
        else:
            newest = max(times)
            last = values[times.index(newest)]  # the first of the newest, as add keeps it
            low, high = min(values), max(values)
        if not found:
            at += SLOT
            slots[at:at] = array("d", (start, len(values), 0.0, low, high, newest, last, 0.0))
        else:
            slots[at + _COUNT] += len(values)
            if low < slots[at + _MIN]:
                slots[at + _MIN] = low
            if high > slots[at + _MAX]:
                slots[at + _MAX] = high
            if newest > slots[at + _LAST_US]:
                slots[at + _LAST_US] = newest
                slots[at + _LAST] = last
        self._store_sum(at, start, partials)
        return True

    def _add_one_by_one(
        self, times: Sequence[int], values: Sequence[float], positions: Iterable[int]
    ) -> list[int]:
        """:meth:`add` each value; the positions of those refused (overflow)."""
        refused = []
        for k in positions:
            try:
                self.add(times[k], values[k])
            except OverflowError:
                refused.append(k)
        return refused

    def _partials(self, at: int, start: int) -> list[float]:
        """The exact sum of the window at slot ``at`` as its partials, lowest first."""
        high = self.slots[at + _SUM]
        low = self.slots[at + _LOW]
        if not low:
            return [high]
        below = None if self.extra is None else self.extra.get(start)
        return [low, high] if below is None else [*below, low, high]

    def _store_sum(self, at: int, start: int, partials: list[float]) -> None:
        """Keep an exact sum: the highest two partials in the slots, the others in
        ``extra``."""
        self.slots[at + _SUM] = partials[-1]
        self.slots[at + _LOW] = partials[-2] if len(partials) > 1 else 0.0
        if len(partials) > 2:
            if self.extra is None:
                self.extra = {}
            self.extra[start] = partials[:-2]
        elif self.extra is not None and start in self.extra:
            del self.extra[start]
            self.extra = self.extra or None

    def window(self, start: int) -> Window | None:
        """The window at ``start`` as a :class:`Window`, or None if it is not open."""
        slots = self.slots
        for at in range(len(slots) - SLOT, -1, -SLOT):
            if slots[at] == start:
                return self._window_at(at)
        return None

    def _window_at(self, at: int) -> Window:
        slots = self.slots
        start = int(slots[at])
        partials = self._partials(at, start)
        return Window(
            start,
            int(slots[at + _COUNT]),
            partials[0] if len(partials) == 1 else partials,
            slots[at + _MIN],
            slots[at + _MAX],
            int(slots[at + _LAST_US]),
            slots[at + _LAST],
        )

    def changed(self, start: int) -> None:
        """Note that the window at ``start`` changed: its aggregate is to be written."""
        if self.unwritten is None or start < self.unwritten:
            self.unwritten = start

    def unwritten_rows(self) -> list[AggregateRow]:
        """The aggregates of the open windows from the earliest changed one on (see
        ``unwritten``), read straight from the slots: a snapshot writes three for every
        sensor that reported since the one before, so no :class:`Window` is built for them."""
        first = self.unwritten
        if first is None:
            return []
        slots = self.slots
        rows = []
        for at in range(0, len(slots), SLOT):
            start = slots[at]
            if start < first:
                continue
            count = int(slots[at + _COUNT])
            total = (  # Window.aggregate's mean: one partial is the sum itself
                exact_total(self._partials(at, int(start)))
                if slots[at + _LOW]
                else slots[at + _SUM]
            )
            rows.append(
                (
                    int(start),
                    count,
                    total / count,
                    slots[at + _MIN],
                    slots[at + _MAX],
                    slots[at + _LAST],
                )
            )
        return rows

    def prune(self, lateness_us: int, mark_us: int) -> None:
        """Drop the windows that are final at watermark ``mark_us`` and written, in place.

        A final window changed since it was last written (at or after ``unwritten``) stays
        until its aggregate is written: it no longer takes values (the caller checks
        :func:`is_late` before :meth:`add`), and a saved state still holds it, so the write
        survives a crash.
        """
        slots = self.slots
        final = 0
        while (
            final < len(slots)
            and (self.unwritten is None or slots[final] < self.unwritten)
            and is_late(int(slots[final]), self.size_us, lateness_us, mark_us)
        ):
            if self.extra is not None:
                self.extra.pop(int(slots[final]), None)
            final += SLOT
        if final:
            del slots[:final]
        if not self.extra:
            self.extra = None


def is_late(start: int, size_us: int, lateness_us: int, mark_us: int | None) -> bool:
    """True when the window at ``start`` no longer accepts values (watermark ``mark_us``)."""
    return mark_us is not None and start + size_us + lateness_us <= mark_us


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
