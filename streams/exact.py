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
from collections.abc import Iterable


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


def merge_exact(partials: list[float], other: Iterable[float]) -> None:
    """Add another exact sum's partials to ``partials``, in place."""
    for value in other:
        add_exact(partials, value)


def exact_total(partials: Iterable[float]) -> float:
    """The exact sum, correctly rounded to the nearest float."""
    return math.fsum(partials)
