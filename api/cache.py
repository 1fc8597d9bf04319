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
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Generic, TypeVar

from fastapi import Request, Response
from starlette.datastructures import URL, Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.http import cache_control, etag_matches, etag_of

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

    def fresh(self, key: Hashable) -> T | None:
        """The value of ``key`` to serve without waiting: a fresh one, or a stale one while
        another caller refreshes it; None when the caller should call :meth:`get`.

        Never waits, never computes: for async callers, a hit is served on the event loop and
        only a miss (or the first caller after expiry) needs :meth:`get` in a worker thread.
        """
        hit = self._values.get(key)
        if hit is None:
            return None
        if self.clock() - hit[0] < self.ttl_s:
            return hit[1]
        lock = self._locks.get(key)
        return hit[1] if lock is not None and lock.locked() else None

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


@dataclass(frozen=True)
class Rendered:
    """A JSON answer rendered once: its bytes, ETag and gzip form, to serve many times."""

    body: bytes
    etag: str
    gzipped: bytes | None


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

    Only a route fills the cache (keyed by ``str(request.url)``), after validating the query,
    so a hit is always an answer the route gave for exactly this URL. Everything else (a
    miss, a stale value, another path) goes on to the app.
    """

    def __init__(
        self, app: ASGIApp, *, path: str, cache: TtlCache[Rendered], media_type: str, max_age: int
    ) -> None:
        self.app = app
        self.path = path
        self.cache = cache
        self.media_type = media_type.encode()
        self.max_age = max_age
        # What the router would have put in the scope, for the layers outside this one that
        # label requests by route template (api/metrics.py reads ``path_format``).
        self.route = SimpleNamespace(path=path, path_format=path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a fresh hit, or pass the request on."""
        if scope["type"] == "http" and scope["path"] == self.path and scope["method"] == "GET":
            rendered = self.cache.fresh(str(URL(scope=scope)))
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
