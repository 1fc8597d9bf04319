"""Per-client rate limits and API keys (a pure core and one pure-ASGI middleware).

A client is its API key when it sends a valid ``X-API-Key``, otherwise its address (the TCP
peer, or an ``X-Forwarded-For`` entry when ``api.trusted_proxy_hops`` says proxies are
trusted). Each client has a token bucket of ``burst`` requests refilled at ``per_s``; it is
kept as one number, the bucket's *theoretical arrival time* (GCRA, the token bucket in the
form ATM switches and API gateways use): no timer, no background thread, a dict lookup and a
few float operations per request.

Why not the ``limits`` library (or slowapi on top of it): its memory storage expresses rates
as fixed or moving windows, with no bucket size separate from the rate, and starts a timer
thread to expire keys; a bucket of a few lines is smaller, exact and cheaper here. One
process keeps its own buckets: with several API processes, each allows the full rate.

Answers: over the limit, ``429`` problem+json with ``Retry-After`` (whole seconds, at least
1); an invalid key, ``401`` problem+json (no key at all is fine: anonymous). Every limited
answer carries ``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers-10).
Keys of either scope (:mod:`api.keys`) get the keyed rate. The liveness probe ``/livez``,
``/metrics`` and the documentation are never limited; readiness (``/readyz``, ``/health``)
is, as it may cost a query.

The middleware leaves who asked in the request's state for the routes: ``client`` (the
bucket's name) and ``principal`` (the key's :class:`~api.keys.Principal`, or None).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http import PROBLEM_MEDIA_TYPE
from api.keys import API_KEY_HEADER, ApiKeys, Principal
from urbanpulse.settings import ApiSettings

# Never limited: liveness, scrapes and the documentation must work for a throttled client
# too (none of them asks InfluxDB or Kafka anything).
EXEMPT_PATHS = frozenset(
    {"/", "/livez", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)


@dataclass(frozen=True)
class Rate:
    """A bucket of ``burst`` requests refilled at ``per_s`` requests per second."""

    per_s: float
    burst: int

    @property
    def unlimited(self) -> bool:
        """A rate of 0 means no limit."""
        return self.per_s <= 0


@dataclass(frozen=True)
class Decision:
    """The verdict on one request: allowed or not, and what the client may do next."""

    allowed: bool
    remaining: int
    retry_after_s: float
    reset_s: float


def gcra(tat: float, now: float, rate: Rate) -> tuple[float, Decision]:
    """Count one request against a bucket at theoretical arrival time ``tat`` (pure).

    Returns the bucket's new ``tat`` and the decision. A full bucket is ``tat <= now``; each
    request moves ``tat`` one emission interval later; a request that would move it more than
    ``burst`` intervals past ``now`` is refused and leaves the bucket as it was.
    """
    interval = 1.0 / rate.per_s
    capacity = interval * rate.burst
    new_tat = max(tat, now) + interval
    if new_tat - now > capacity + 1e-9:
        retry = new_tat - capacity - now
        return tat, Decision(False, 0, retry, max(tat, now) - now)
    remaining = int((capacity - (new_tat - now)) / interval + 1e-9)
    return new_tat, Decision(True, remaining, 0.0, new_tat - now)


@dataclass
class RateLimiter:
    """Buckets by client id, in memory; bounded to ``max_clients`` buckets."""

    clock: Callable[[], float] = time.monotonic
    max_clients: int = 100_000
    _tats: dict[str, float] = field(default_factory=dict)

    def hit(self, client: str, rate: Rate) -> Decision:
        """Count one request of ``client`` under ``rate``."""
        now = self.clock()
        tat, decision = gcra(self._tats.get(client, now), now, rate)
        if decision.allowed:
            if len(self._tats) >= self.max_clients and client not in self._tats:
                self._prune(now)
            self._tats[client] = tat
        return decision

    def _prune(self, now: float) -> None:
        # A full bucket carries no information: forget those first. If every bucket is in use
        # (an attack from more addresses than max_clients), start over rather than grow.
        self._tats = {c: t for c, t in self._tats.items() if t > now}
        if len(self._tats) >= self.max_clients:
            self._tats.clear()


def client_address(peer: str | None, forwarded_for: str | None, hops: int) -> str:
    """The client's address: the TCP peer, or the ``hops``-th ``X-Forwarded-For`` entry from
    the right when that many proxies in front are trusted (entries further left are forgeable).
    """
    if hops > 0 and forwarded_for:
        chain = [a.strip() for a in forwarded_for.split(",") if a.strip()]
        if chain:
            return chain[-hops] if len(chain) >= hops else chain[0]
    return peer or "unknown"


def policy_header(rate: Rate) -> bytes:
    """``RateLimit-Policy``: the bucket size and the seconds it takes to refill."""
    return f'"bucket";q={rate.burst};w={max(1, math.ceil(rate.burst / rate.per_s))}'.encode()


def state_header(decision: Decision) -> bytes:
    """``RateLimit``: requests left now, and seconds until the bucket is full again."""
    return f'"bucket";r={decision.remaining};t={math.ceil(decision.reset_s)}'.encode()


def problem_body(status: int, title: str, detail: str, instance: str) -> bytes:
    """An RFC 9457 problem body, as the rest of the API writes them."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return json.dumps(body | {"instance": instance}, separators=(",", ":")).encode()


class RateLimitMiddleware:
    """Checks the API key and the client's bucket before the app sees a request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: ApiKeys,
        anonymous: Rate,
        keyed: Rate,
        proxy_hops: int = 0,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.app = app
        self.keys = keys
        self.rates = {False: anonymous, True: keyed}
        self.policies = {k: policy_header(r) for k, r in self.rates.items() if not r.unlimited}
        self.proxy_hops = proxy_hops
        self.limiter = limiter or RateLimiter()

    def _credentials(self, scope: Scope) -> tuple[str | None, str | None]:
        """The request's API key, and its X-Forwarded-For chain when proxies are trusted."""
        key: str | None = None
        forwarded: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                key = value.decode("latin-1")
            elif name == b"x-forwarded-for" and self.proxy_hops:
                text = value.decode("latin-1")
                forwarded = text if forwarded is None else f"{forwarded},{text}"
        return key, forwarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 401/429 itself, or pass the request on with RateLimit headers added."""
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        key, forwarded = self._credentials(scope)
        principal: Principal | None = None
        if key is not None:
            principal = self.keys.identify(key)
            if principal is None:
                detail = f"the {API_KEY_HEADER} header names no valid API key"
                challenge = [(b"www-authenticate", f'APIKey header="{API_KEY_HEADER}"'.encode())]
                await _answer(send, 401, "Unauthorized", detail, scope["path"], challenge)
                return
            client = principal.client
        else:
            peer = scope.get("client")
            client = "ip:" + client_address(peer[0] if peer else None, forwarded, self.proxy_hops)
        # For the routes (request.state): who is asking, e.g. to count live streams per client.
        state = scope.setdefault("state", {})
        state["client"], state["principal"] = client, principal
        keyed = key is not None
        rate = self.rates[keyed]
        if rate.unlimited:
            await self.app(scope, receive, send)
            return
        decision = self.limiter.hit(client, rate)
        headers = [
            (b"ratelimit-policy", self.policies[keyed]),
            (b"ratelimit", state_header(decision)),
        ]
        if not decision.allowed:
            retry = max(1, math.ceil(decision.retry_after_s))
            headers.append((b"retry-after", str(retry).encode()))
            detail = f"rate limit of {rate.per_s:g} requests/s exceeded; retry in {retry} s"
            await _answer(send, 429, "Too many requests", detail, scope["path"], headers)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _answer(
    send: Send, status: int, title: str, detail: str, path: str, headers: list[tuple[bytes, bytes]]
) -> None:
    body = problem_body(status, title, detail, path)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def rates(api: ApiSettings) -> tuple[Rate, Rate]:
    """The anonymous and the keyed rate the settings ask for."""
    return (
        Rate(api.rate_anonymous_per_s, api.rate_anonymous_burst),
        Rate(api.rate_keyed_per_s, api.rate_keyed_burst),
    )
