"""A small time-to-live cache with one computation per key at a time (pure but for the clock).

Maps poll ``/v1/latest`` and ``/v1/sensors`` often, and all ask the same question; InfluxDB
answers it in hundreds of milliseconds. Within a few seconds the answer cannot change much, so
one query serves every caller in that time, and concurrent callers wait for the one running
query instead of each starting their own; once a value exists, a refresh never makes anybody
wait (stale-while-revalidate).
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlencode

from fastapi import Request, Response
from starlette.datastructures import URL, Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.http import cache_control, etag_matches, etag_of
from api.lru import BoundedLru
from urbanpulse.settings import ApiSettings

T = TypeVar("T")


@dataclass
class _KeyLock:
    """The lock of one key and how many callers hold or wait for it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


@dataclass
class TtlCache(Generic[T]):
    """Values by key, each kept for ``ttl_s`` seconds after it was computed.

    Bounded: at most ``max_entries`` values weighing at most ``max_bytes`` (by ``weigh``; 0:
    no byte bound), the least recently used forgotten first (:class:`api.lru.BoundedLru`).
    A key's lock exists only while some caller computes or waits for that key, so the locks
    are bounded by the callers in flight, not by the keys ever asked.
    """

    ttl_s: float
    clock: Callable[[], float] = time.monotonic
    max_entries: int = 1024
    max_bytes: int = 0
    weigh: Callable[[T], int] = lambda _: 0
    _values: BoundedLru[T] = field(init=False)
    _locks: dict[Hashable, _KeyLock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._values = BoundedLru(self.max_entries, self.max_bytes, self.weigh)

    def __len__(self) -> int:
        return len(self._values)

    @property
    def bytes(self) -> int:
        """What the values kept weigh together."""
        return self._values.bytes

    @property
    def locks(self) -> int:
        """Keys some caller computes or waits for right now."""
        return len(self._locks)

    def fresh(self, key: Hashable) -> T | None:
        """The value of ``key`` to serve without waiting: a fresh one, or a stale one while
        another caller refreshes it; None when the caller should call :meth:`get`.

        Never waits, never computes: for async callers, a hit is served on the event loop and
        only a miss (or the first caller after expiry) needs :meth:`get` in a worker thread.
        """
        with self._guard:
            hit = self._values.get(key)
            if hit is None:
                return None
            if self.clock() - hit.stamp < self.ttl_s:
                return hit.value
            held = self._locks.get(key)
            return hit.value if held is not None and held.lock.locked() else None

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached value of ``key``; when stale, one caller recomputes it while the others
        keep getting the stale value (only a key never computed makes callers wait)."""
        if self.ttl_s <= 0:
            return compute()
        with self._guard:
            hit = self._values.get(key)
            if hit is not None and self.clock() - hit.stamp < self.ttl_s:
                return hit.value
            held = self._locks.setdefault(key, _KeyLock())
            held.users += 1
        try:
            if hit is not None and not held.lock.acquire(blocking=False):
                return hit.value  # another caller is refreshing it right now
            if hit is None:
                held.lock.acquire()
            try:
                return self._compute(key, compute)
            finally:
                held.lock.release()
        finally:
            with self._guard:
                held.users -= 1
                if held.users == 0:
                    del self._locks[key]

    def _compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The value of ``key``, computed unless a caller before this one just did."""
        with self._guard:
            hit = self._values.get(key)
        if hit is not None and self.clock() - hit.stamp < self.ttl_s:
            return hit.value
        value = compute()
        with self._guard:
            self._values.put(key, self.clock(), value)
        return value


@dataclass(frozen=True)
class Rendered:
    """A JSON answer rendered once: its bytes, ETag and gzip form, to serve many times."""

    body: bytes
    etag: str
    gzipped: bytes | None


def rendered_size(rendered: Rendered) -> int:
    """The bytes a rendered answer keeps in memory (plain and gzip forms)."""
    return len(rendered.body) + len(rendered.gzipped or b"")


def normalised_url(url: URL, params: Collection[str]) -> str:
    """``url`` with only the query parameters ``params`` a route reads, sorted by name: the
    key its answer is cached under, and the answer's ``self`` link.

    Junk parameters cannot make new keys, and ``?a=1&b=2`` and ``?b=2&a=1`` share one. A
    parameter given twice counts as FastAPI reads a single-valued one: the last value.
    """
    last = {name: value for name, value in parse_qsl(url.query, keep_blank_values=True)}
    query = urlencode(sorted((n, v) for n, v in last.items() if n in params))
    return str(url.replace(query=query))


def answer_cache(ttl_s: float, api: ApiSettings) -> TtlCache[Rendered]:
    """A cache of rendered answers, bounded as the settings say (entries and megabytes)."""
    return TtlCache(
        ttl_s,
        max_entries=api.cache_max_entries,
        max_bytes=max_bytes(api),
        weigh=rendered_size,
    )


def max_bytes(api: ApiSettings) -> int:
    """``api.cache_max_mb`` in bytes: what one cache of rendered answers may keep."""
    return int(api.cache_max_mb * 1024 * 1024)


def render_json(body: Any, gzip_min_bytes: int) -> Rendered:
    """Serialise ``body`` once, with its ETag, and gzip it once when it is large enough.

    Compressing here, once per cache period, spares the GZip middleware from compressing the
    same bytes again on every request.
    """
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    packed = gzip.compress(content, compresslevel=6) if len(content) >= gzip_min_bytes else None
    return Rendered(content, etag_of(content), packed)


def answer(
    rendered: Rendered, if_none_match: str | None, accept_encoding: str | None, max_age: int
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body for one request: 304, the gzip bytes or the plain ones (pure)."""
    headers = {"ETag": rendered.etag, "Cache-Control": cache_control(max_age)}
    if rendered.gzipped is not None:
        headers["Vary"] = "Accept-Encoding"
    if etag_matches(if_none_match, rendered.etag):
        return 304, headers, b""
    if rendered.gzipped is not None and "gzip" in (accept_encoding or ""):
        # Content-Encoding set: the GZip middleware passes these bytes on untouched.
        return 200, headers | {"Content-Encoding": "gzip"}, rendered.gzipped
    return 200, headers, rendered.body


def respond(request: Request, rendered: Rendered, *, media_type: str, max_age: int) -> Response:
    """The answer for one request, from a rendered body (no new work)."""
    status, headers, body = answer(
        rendered,
        request.headers.get("if-none-match"),
        request.headers.get("accept-encoding"),
        max_age,
    )
    if status == 304:
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type=media_type, headers=headers)


class CachedAnswers:
    """Pure-ASGI fast path: a GET of ``path`` whose URL has a fresh rendered answer in
    ``cache`` is answered here, before routing and parameter validation.

    Only a route fills the cache (keyed by :func:`normalised_url` over the route's query
    ``params``), after validating the query, so a hit is always an answer the route gave for
    the same parameters. Everything else (a miss, a stale value, another path) goes on to
    the app.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str,
        params: Collection[str],
        cache: TtlCache[Rendered],
        media_type: str,
        max_age: int,
    ) -> None:
        self.app = app
        self.path = path
        self.params = params
        self.cache = cache
        self.media_type = media_type.encode()
        self.max_age = max_age
        # What the router would have put in the scope, for the layers outside this one that
        # label requests by route template (api/metrics.py reads ``path_format``).
        self.route = SimpleNamespace(path=path, path_format=path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a fresh hit, or pass the request on."""
        if scope["type"] == "http" and scope["path"] == self.path and scope["method"] == "GET":
            rendered = self.cache.fresh(normalised_url(URL(scope=scope), self.params))
            if rendered is not None:
                scope["route"] = self.route
                request_headers = Headers(scope=scope)
                status, headers, body = answer(
                    rendered,
                    request_headers.get("if-none-match"),
                    request_headers.get("accept-encoding"),
                    self.max_age,
                )
                raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
                if status != 304:
                    raw += [(b"content-type", self.media_type)]
                raw.append((b"content-length", str(len(body)).encode()))
                await send({"type": "http.response.start", "status": status, "headers": raw})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
