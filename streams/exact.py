"""Exact running sums of floats: Shewchuk's non-overlapping partials (pure).

A window's sum is kept as a short list of *partials*: floats whose exact (real-number) sum is
exactly the sum of every value added so far, with no rounding error (J. R. Shewchuk,
"Adaptive Precision Floating-Point Arithmetic and Fast Robust Geometric Predicates", 1997;
the algorithm of Python's ``math.fsum``). :func:`exact_total` rounds that exact sum once, so
a mean is ``exact_total(partials) / count``: the same float as ``math.fsum(values) / count``
computed offline, whatever the order the values came in or how the sums were merged.

The list stays short for values of similar magnitude (one or two partials, usually one): the
cost per value is a few float operations. Values are finite (``urbanpulse.model.check``); a
sum beyond ±1.8e308 would overflow, as ``math.fsum`` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def add_exact(partials: list[float], value: float) -> None:
    """Add ``value`` to the partials, in place, keeping their sum exact."""
    add_all_exact(partials, (value,))


def add_all_exact(partials: list[float], values: Iterable[float]) -> None:
    """Add every value to the partials, in place, keeping their sum exact (a window takes a
    batch's values of it at once)."""
    for x in values:
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            high = x + y
            low = y - (high - x)
            if low:
                partials[i] = low
                i += 1
            x = high
        partials[i:] = [x]


class SliceSums:
    """Exact sums of slices of one list of values, each value added once: a batch's values
    of a series go to a window of every size (three by default), and the slices of the
    larger sizes are made of those of the smaller ones (windows start on multiples of their
    size). A slice is summed from the slices summed before it that tile it, if any (the
    earliest summed first), else from its values."""

    def __init__(self, values: Sequence[float]) -> None:
        self.values = values
        self._pieces: dict[int, tuple[int, list[float]]] = {}  # start -> (end, partials)

    def of(self, start: int, end: int) -> list[float]:
        """The partials of ``values[start:end]`` (a new list: the caller may change it)."""
        pieces, at = self._pieces, start
        partials: list[float] = []
        while at < end:
            piece = pieces.get(at)
            if piece is None or piece[0] > end:
                break
            add_all_exact(partials, piece[1])
            at = piece[0]
        if at == end:
            return partials
        own: list[float] = []
        add_all_exact(own, self.values[at:end])
        if at not in pieces:
            pieces[at] = (end, own)
        if not partials:
            return list(own)
        add_all_exact(partials, own)
        return partials


def merge_exact(partials: list[float], other: Iterable[float]) -> None:
    """Add another exact sum's partials to ``partials``, in place."""
    add_all_exact(partials, other)  # partials added as values: their sum, exactly


def exact_total(partials: Iterable[float]) -> float:
    """The exact sum, correctly rounded to the nearest float."""
    return math.fsum(partials)
