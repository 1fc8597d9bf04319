import threading
from typing import Any

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

    mw = CachedAnswers(app, path="/v1/latest", cache=cache, media_type="x/y", max_age=30)

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
    get("/v1/latest", b"tenant=b", [])  # another URL: a miss
    get("/v1/sensors", b"tenant=a", [])  # another path
    assert calls == ["/v1/latest", "/v1/latest", "/v1/sensors"]
