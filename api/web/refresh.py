"""A cache that never makes a visitor wait for a refresh: stale values are renewed in the
background (pure but for the clock and the worker thread it computes in).

The map's data costs one InfluxDB query of every series' last point (0.3-0.4 s for 500
sensors, ``benchmarks/web_bench.py``) and 7 ms of Python. :class:`api.cache.TtlCache` serves a
stale value to everybody but the one caller that refreshes it, who waits the whole query; here
that caller too gets the stale value and the refresh runs as a task of its own. Only a key
never computed makes its first callers wait, for one shared computation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from fastapi.concurrency import run_in_threadpool

from api.lru import BoundedLru

log = logging.getLogger(__name__)
T = TypeVar("T")


class BackgroundRefresh(Generic[T]):
    """Values by key; one older than ``ttl_s`` is served while a background task renews it."""

    def __init__(
        self,
        ttl_s: float,
        compute: Callable[[Hashable], T],
        clock: Callable[[], float] = time.monotonic,
        *,
        max_entries: int = 256,
        max_bytes: int = 0,
        weigh: Callable[[T], int] = lambda _: 0,
    ) -> None:
        self.ttl_s = ttl_s
        self.compute = compute
        self.clock = clock
        # Bounded, least recently used forgotten first; the pending computations are bounded
        # by the keys asked at once (each finishes and leaves).
        self._values: BoundedLru[T] = BoundedLru(max_entries, max_bytes, weigh)
        self._pending: dict[Hashable, asyncio.Future[T]] = {}

    async def get(self, key: Hashable) -> T:
        """The value of ``key``: cached if there is one (renewed behind it when stale)."""
        if self.ttl_s <= 0:
            return await run_in_threadpool(self.compute, key)
        hit = self._values.get(key)
        if hit is not None:
            if self.clock() - hit.stamp >= self.ttl_s:
                self._start(key)
            return hit.value
        # shield: a caller that goes away does not cancel the computation the others await
        return await asyncio.shield(self._start(key))

    def _start(self, key: Hashable) -> asyncio.Future[T]:
        """The running computation of ``key``, started if there is none."""
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = asyncio.ensure_future(self._compute(key))
            pending.add_done_callback(self._report)
        return pending

    async def _compute(self, key: Hashable) -> T:
        try:
            value = await run_in_threadpool(self.compute, key)
            self._values.put(key, self.clock(), value)
            return value
        finally:
            self._pending.pop(key, None)

    @staticmethod
    def _report(done: asyncio.Future[T]) -> None:
        """A failed background refresh is logged (the stale value stays until one succeeds)."""
        if not done.cancelled() and done.exception() is not None:
            log.warning("refreshing a cached page answer failed: %s", done.exception())
