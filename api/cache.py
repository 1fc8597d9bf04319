"""A small time-to-live cache with one computation per key at a time (pure but for the clock).

Maps poll ``/v1/latest`` and ``/v1/sensors`` often, and all ask the same question; InfluxDB
answers it in hundreds of milliseconds. Within a few seconds the answer cannot change much, so
one query serves every caller in that time, and concurrent callers wait for the one running
query instead of each starting their own; once a value exists, a refresh never makes anybody
wait (stale-while-revalidate).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class TtlCache(Generic[T]):
    """Values by key, each kept for ``ttl_s`` seconds after it was computed."""

    ttl_s: float
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 1024
    _values: dict[Hashable, tuple[float, T]] = field(default_factory=dict)
    _locks: dict[Hashable, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached value of ``key``; when stale, one caller recomputes it while the others
        keep getting the stale value (only a key never computed makes callers wait)."""
        if self.ttl_s <= 0:
            return compute()
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
            hit = self._values.get(key)
        if hit is not None and self.clock() - hit[0] < self.ttl_s:
            return hit[1]
        if hit is not None and not lock.acquire(blocking=False):
            return hit[1]  # another caller is refreshing it right now
        if hit is None:
            lock.acquire()
        try:
            with self._guard:
                hit = self._values.get(key)
            if hit is not None and self.clock() - hit[0] < self.ttl_s:
                return hit[1]
            value = compute()
            with self._guard:
                if len(self._values) >= self.max_keys:  # bounded: forget everything, start over
                    self._values.clear()
                self._values[key] = (self.clock(), value)
            return value
        finally:
            lock.release()
