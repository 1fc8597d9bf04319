"""Delivery latencies: exact percentiles of a list, and a small mergeable sketch of them (pure).

A sensor's day has every latency at hand, so its p50 and p95 are exact (nearest rank). Weeks,
districts and tenants are merged from stored days and sensors, which keep their latencies
as a :class:`LatencySketch`: counts in logarithmic buckets (the DDSketch idea), so that any
percentile read from a merge is within ``RELATIVE_ERROR`` (1 %) of the exact one. Latencies
within a millisecond of zero share one bucket; negative ones (a sensor clock ahead of the
platform's) are bucketed by their size, mirrored.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence

RELATIVE_ERROR = 0.01
_GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_LOG_GAMMA = math.log(_GAMMA)
ZERO_S = 0.001  # latencies this close to zero count as zero


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 < q <= 1) by nearest rank: the ceil(q*n)-th smallest value."""
    if not values:
        raise ValueError("no values")
    return values[max(0, math.ceil(q * len(values)) - 1)]


def _key(value: float) -> int:
    size = abs(value)
    if size <= ZERO_S:
        return 0
    index = max(1, math.ceil(math.log(size / ZERO_S) / _LOG_GAMMA))
    return index if value > 0 else -index


def _value(key: int) -> float:
    if key == 0:
        return 0.0
    # the bucket's (ZERO_S*gamma^(k-1), ZERO_S*gamma^k] midpoint in relative terms
    size = ZERO_S * 2 * _GAMMA ** abs(key) / (_GAMMA + 1)
    return size if key > 0 else -size


class LatencySketch:
    """Latency counts in logarithmic buckets; merge by adding, read percentiles within 1 %."""

    def __init__(self, counts: Counter[int] | None = None) -> None:
        self.counts: Counter[int] = counts if counts is not None else Counter()

    @classmethod
    def of(cls, values: Iterable[float]) -> LatencySketch:
        """A sketch of these latencies (seconds)."""
        return cls(Counter(_key(v) for v in values))

    @classmethod
    def merged(cls, sketches: Iterable[LatencySketch]) -> LatencySketch:
        """One sketch of everything the given sketches hold."""
        total: Counter[int] = Counter()
        for sketch in sketches:
            total.update(sketch.counts)
        return cls(total)

    @property
    def count(self) -> int:
        """How many latencies it holds."""
        return sum(self.counts.values())

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile by nearest rank, within 1 %; None when empty."""
        n = self.count
        if n == 0:
            return None
        rank = max(1, math.ceil(q * n))
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return _value(key)
        raise AssertionError("unreachable: rank <= count")

    def to_json(self) -> str:
        """Compact JSON: bucket key → count."""
        counts = {str(k): v for k, v in sorted(self.counts.items())}
        return json.dumps(counts, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> LatencySketch:
        """Read a sketch written by :meth:`to_json` (an empty text is an empty sketch)."""
        if not text:
            return cls()
        return cls(Counter({int(k): int(v) for k, v in json.loads(text).items()}))
