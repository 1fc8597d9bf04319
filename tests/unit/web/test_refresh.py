"""The background-refresh cache: nobody waits for a refresh, first callers share one compute."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Hashable

import pytest

from api.web.refresh import BackgroundRefresh


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Source:
    """Counts computations; each can be held back until released."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False

    def __call__(self, key: Hashable) -> str:
        self.gate.wait(5)
        self.calls += 1
        if self.fail:
            raise RuntimeError("store down")
        return f"{key}#{self.calls}"


def test_first_callers_share_one_computation() -> None:
    source = Source()
    cache = BackgroundRefresh(5, source, Clock())

    async def scenario() -> list[str]:
        source.gate.clear()
        calls = [asyncio.create_task(cache.get("demo")) for _ in range(5)]
        await asyncio.sleep(0.05)
        source.gate.set()
        return await asyncio.gather(*calls)

    assert asyncio.run(scenario()) == ["demo#1"] * 5
    assert source.calls == 1


def test_a_stale_value_is_served_at_once_and_renewed_behind_it() -> None:
    source, clock = Source(), Clock()
    cache = BackgroundRefresh(5, source, clock)

    async def scenario() -> list[str]:
        seen = [await cache.get("demo")]
        clock.now = 6
        source.gate.clear()  # the refresh cannot finish yet
        seen.append(await asyncio.wait_for(cache.get("demo"), 1))  # served without waiting
        seen.append(await asyncio.wait_for(cache.get("demo"), 1))
        source.gate.set()
        await asyncio.sleep(0.2)
        seen.append(await cache.get("demo"))
        return seen

    assert asyncio.run(scenario()) == ["demo#1", "demo#1", "demo#1", "demo#2"]
    assert source.calls == 2  # one refresh, however many stale reads


def test_a_failed_refresh_keeps_the_old_value_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source, clock = Source(), Clock()
    cache = BackgroundRefresh(5, source, clock)

    async def scenario() -> list[str]:
        seen = [await cache.get("demo")]
        clock.now = 6
        source.fail = True
        seen.append(await cache.get("demo"))
        await asyncio.sleep(0.2)
        source.fail = False
        seen.append(await cache.get("demo"))  # still stale: a new refresh starts
        await asyncio.sleep(0.2)
        seen.append(await cache.get("demo"))
        return seen

    with caplog.at_level(logging.WARNING, logger="api.web.refresh"):
        assert asyncio.run(scenario()) == ["demo#1", "demo#1", "demo#1", "demo#3"]
    assert "store down" in caplog.text


def test_without_a_ttl_every_call_computes() -> None:
    source = Source()
    cache = BackgroundRefresh(0, source, Clock())
    assert asyncio.run(cache.get("a")) == "a#1"
    assert asyncio.run(cache.get("a")) == "a#2"


def test_a_full_cache_forgets_the_least_recently_used() -> None:
    source = Source()
    cache = BackgroundRefresh(60, source, Clock(), max_entries=2)

    async def scenario() -> None:
        await cache.get("hot")
        for number in range(50):
            await cache.get(f"junk-{number}")
            assert await cache.get("hot") == "hot#1"  # kept: used between the new keys

    asyncio.run(scenario())
    assert len(cache._values) == 2 and not cache._pending
