import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


def test_fresh_serves_without_computing_and_stale_only_while_refreshing() -> None:
    clock = Clock()
    cache: TtlCache[int] = TtlCache(5.0, clock=clock)
    assert cache.fresh("k") is None  # never computed: the caller must get() it
    cache.get("k", lambda: 1)
    assert cache.fresh("k") == 1
    clock.now = 6.0
    assert cache.fresh("k") is None  # stale, nobody refreshing: this caller refreshes

    started, release = threading.Event(), threading.Event()

    def slow() -> int:
        started.set()
        release.wait(5)
        return 2

    refresher = threading.Thread(target=cache.get, args=("k", slow))
    refresher.start()
    assert started.wait(5)
    assert cache.fresh("k") == 1  # stale while another caller refreshes it
    release.set()
    refresher.join(5)
    assert cache.fresh("k") == 2


def test_cached_answers_serves_a_fresh_hit_before_the_app() -> None:
    import asyncio
    import gzip

    from api.cache import CachedAnswers, Rendered, render_json

    cache: TtlCache[Rendered] = TtlCache(5.0, clock=Clock())
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"from the app"})

    mw = CachedAnswers(
        app,
        path="/v1/latest",
        params=("tenant",),
        cache=cache,
        media_type="x/y",
        max_age=30,
    )

    hit_scope: dict[str, Any] = {}

    def get(path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> list[Any]:
        sent: list[Any] = []

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "query_string": query,
            "headers": [(b"host", b"api"), *headers],
            "server": ("api", 80),
            "root_path": "",
        }
        asyncio.run(mw(scope, None, send))
        hit_scope.clear()
        hit_scope.update(scope)
        return sent

    assert get("/v1/latest", b"tenant=a", [])[1]["body"] == b"from the app"  # a miss
    rendered = render_json({"features": ["x"] * 500}, gzip_min_bytes=100)
    cache.get("http://api/v1/latest?tenant=a", lambda: rendered)
    start, body = get("/v1/latest", b"tenant=a", [(b"accept-encoding", b"gzip")])
    assert calls == ["/v1/latest"]  # the hit never reached the app
    assert start["status"] == 200 and (b"content-encoding", b"gzip") in start["headers"]
    assert gzip.decompress(body["body"]) == rendered.body
    assert hit_scope["route"].path_format == "/v1/latest"  # metrics label it by its route
    plain = get("/v1/latest", b"tenant=a", [])[1]["body"]
    assert plain == rendered.body
    etag = rendered.etag.encode()
    assert get("/v1/latest", b"tenant=a", [(b"if-none-match", etag)])[0]["status"] == 304
    assert get("/v1/latest", b"junk=1&tenant=a", [])[1]["body"] == rendered.body  # same key
    get("/v1/latest", b"tenant=b", [])  # another URL: a miss
    get("/v1/sensors", b"tenant=a", [])  # another path
    assert calls == ["/v1/latest", "/v1/latest", "/v1/sensors"]


def test_a_full_cache_forgets_the_least_recently_used_not_everything() -> None:
    cache: TtlCache[int] = TtlCache(60, clock=Clock(), max_entries=3)
    for key in ("a", "b", "c"):
        cache.get(key, lambda: 1)
    cache.get("a", lambda: 99)  # a hit: "a" is now the most recently used
    cache.get("d", lambda: 4)  # full: "b" makes way
    assert len(cache) == 3
    assert cache.fresh("b") is None
    assert [cache.fresh(k) for k in ("a", "c", "d")] == [1, 1, 4]


def test_a_flood_of_new_keys_keeps_the_hot_one_when_it_is_used_in_between() -> None:
    cache: TtlCache[int] = TtlCache(60, clock=Clock(), max_entries=16)
    cache.get("hot", lambda: 1)
    for number in range(10_000):
        cache.get(f"junk-{number}", lambda: 0)
        assert cache.fresh("hot") == 1  # map clients keep asking for it
    assert len(cache) == 16 and cache.locks == 0


def test_bytes_bound_the_rendered_answers() -> None:
    from api.cache import Rendered, render_json, rendered_size

    cache: TtlCache[Rendered] = TtlCache(
        60, clock=Clock(), max_entries=100, max_bytes=3000, weigh=rendered_size
    )
    for number in range(10):
        cache.get(number, lambda: render_json({"x": "y" * 900}, gzip_min_bytes=10_000))
    assert cache.bytes <= 3000 and len(cache) == 3
    huge = render_json({"x": "y" * 5000}, gzip_min_bytes=10_000)
    assert cache.get("huge", lambda: huge) is huge  # answered, but not kept
    assert cache.fresh("huge") is None and len(cache) == 3


@given(st.lists(st.tuples(st.text(max_size=40), st.integers(0, 500)), max_size=300))
def test_memory_stays_bounded_whatever_the_keys(asked: list[tuple[str, int]]) -> None:
    clock = Clock()
    cache: TtlCache[bytes] = TtlCache(5, clock=clock, max_entries=20, max_bytes=2000, weigh=len)
    for step, (key, size) in enumerate(asked):
        clock.now = step / 10  # some keys expire and are computed again
        cache.get(key, lambda size=size: b"x" * size)  # type: ignore[misc]
        assert len(cache) <= 20 and cache.bytes <= 2000
    assert cache.locks == 0  # no lock outlives its callers


def test_locks_exist_only_while_callers_compute() -> None:
    cache: TtlCache[int] = TtlCache(60)
    inside, release = threading.Barrier(9), threading.Event()

    def slow() -> int:
        inside.wait(5)
        release.wait(5)
        return 1

    threads = [threading.Thread(target=cache.get, args=(k, slow)) for k in range(8)]
    for thread in threads:
        thread.start()
    inside.wait(5)  # all eight compute now
    assert cache.locks == 8
    release.set()
    for thread in threads:
        thread.join(5)
    assert cache.locks == 0 and len(cache) == 8


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("a=1&b=2", "a=1&b=2"),
        ("b=2&a=1", "a=1&b=2"),
        ("b=2&junk=x&a=1&utm_source=y", "a=1&b=2"),  # unknown parameters do not count
        ("a=1&a=3&b=2", "a=3&b=2"),  # FastAPI reads the last of a repeated parameter
        ("", ""),
        ("a=&b=5%2C1", "a=&b=5%2C1"),
    ],
)
def test_normalised_urls_sort_and_keep_only_the_route_parameters(query: str, key: str) -> None:
    from starlette.datastructures import URL

    from api.cache import normalised_url

    url = URL(f"http://api/v1/latest?{query}" if query else "http://api/v1/latest")
    expected = f"http://api/v1/latest?{key}" if key else "http://api/v1/latest"
    assert normalised_url(url, ("a", "b")) == expected
