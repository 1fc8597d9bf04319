"""Small pure helpers the benchmarks share: percentiles, rates, CPU per 1,000, budget verdicts."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank ``p`` percentile (0 < p <= 100) of ``values``; None when empty.

    Nearest rank (no interpolation): the figure is always one that was measured, and the p99
    of fewer than 100 samples is the largest, which is the honest answer for small samples.
    """
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} is not in (0, 100]")
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def per_second(count: float, seconds: float) -> float:
    """``count`` per second over ``seconds`` (0 for an empty interval)."""
    return count / seconds if seconds > 0 else 0.0


def cpu_per_thousand(cpu_seconds: float, readings: int) -> float | None:
    """CPU seconds spent per 1,000 readings; None when no reading was stored."""
    return cpu_seconds / readings * 1000 if readings > 0 else None


@dataclass(frozen=True)
class Timing:
    """Repeated measurements of one figure, in microseconds per item."""

    samples: tuple[float, ...]

    @property
    def best(self) -> float:
        """The fastest repeat: the least disturbed by other work on a shared machine."""
        return min(self.samples)

    @property
    def median(self) -> float:
        """The middle repeat."""
        return statistics.median(self.samples)


def over_budget(value: float, budget: float | None, factor: float = 1.0) -> bool:
    """Whether ``value`` exceeds ``budget`` relaxed by ``factor`` (no budget: never)."""
    if factor <= 0:
        raise ValueError("the budget factor must be positive")
    return budget is not None and value > budget * factor
