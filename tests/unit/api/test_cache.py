import threading

from api.cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_reused_until_it_expires() -> None:
    clock, calls = Clock(), []
    cache: TtlCache[int] = TtlCache(5.0, clock=clock)
    compute = lambda: calls.append(1) or len(calls)  # noqa: E731
    assert cache.get("k", compute) == 1
    clock.now = 4.9
    assert cache.get("k", compute) == 1
    assert cache.get("other", compute) == 2
    clock.now = 5.0
    assert cache.get("k", compute) == 3


def test_zero_ttl_turns_it_off() -> None:
    calls = []
    cache: TtlCache[int] = TtlCache(0)
    for _ in range(3):
        cache.get("k", lambda: calls.append(1) or 0)
    assert len(calls) == 3


def test_concurrent_callers_share_one_computation() -> None:
    started, release, calls = threading.Event(), threading.Event(), []

    def slow() -> int:
        calls.append(1)
        started.set()
        release.wait(5)
        return 7

    cache: TtlCache[int] = TtlCache(60)
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("k", slow))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    started.wait(5)
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == [7] * 8 and len(calls) == 1


def test_a_refresh_in_progress_serves_the_stale_value() -> None:
    clock = Clock()
    cache: TtlCache[str] = TtlCache(5.0, clock=clock)
    cache.get("k", lambda: "old")
    clock.now = 10
    entered, release = threading.Event(), threading.Event()

    def slow() -> str:
        entered.set()
        release.wait(5)
        return "new"

    refresher = threading.Thread(target=lambda: cache.get("k", slow))
    refresher.start()
    entered.wait(5)
    assert cache.get("k", lambda: "never") == "old"
    release.set()
    refresher.join(5)
    assert cache.get("k", lambda: "never") == "new"
