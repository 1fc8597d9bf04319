"""Rate limits and API keys: the bucket maths (injected clock), the middleware, the wiring."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from starlette.types import Message, Receive, Scope, Send

from api.app import create_app
from api.keys import ApiKey, ApiKeys
from api.ratelimit import (
    Rate,
    RateLimiter,
    RateLimitMiddleware,
    client_address,
    gcra,
    policy_header,
)
from tests.unit.api.fakes import FakeStore
from urbanpulse.settings import ApiSettings, Settings

KEY = "test-key-0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------- the bucket (pure)


def test_a_full_bucket_allows_burst_requests_at_once_then_refuses() -> None:
    rate, tat, now = Rate(per_s=2, burst=3), 0.0, 10.0
    remaining = []
    for _ in range(3):
        tat, decision = gcra(tat, now, rate)
        assert decision.allowed
        remaining.append(decision.remaining)
    assert remaining == [2, 1, 0]
    refused_tat, refused = gcra(tat, now, rate)
    assert not refused.allowed and refused_tat == tat  # a refusal costs nothing
    assert refused.retry_after_s == pytest.approx(0.5)  # one emission interval at 2/s
    assert refused.reset_s == pytest.approx(1.5)  # three tokens to refill


def test_the_bucket_refills_at_the_rate() -> None:
    rate, tat = Rate(per_s=2, burst=3), 0.0
    for _ in range(3):
        tat, _ = gcra(tat, 10.0, rate)
    _, decision = gcra(tat, 10.49, rate)
    assert not decision.allowed
    tat, decision = gcra(tat, 10.5, rate)
    assert decision.allowed and decision.remaining == 0
    _, decision = gcra(tat, 12.0, rate)  # long idle: full again, never more than burst
    assert decision.allowed and decision.remaining == 2


@given(
    per_s=st.floats(0.5, 500),
    burst=st.integers(1, 200),
    gaps=st.lists(st.floats(0, 0.5), min_size=1, max_size=300),
)
def test_never_more_than_burst_plus_rate_times_elapsed(
    per_s: float, burst: int, gaps: list[float]
) -> None:
    rate, tat, now, allowed = Rate(per_s, burst), 0.0, 100.0, 0
    start = now
    for gap in gaps:
        now += gap
        tat, decision = gcra(tat, now, rate)
        allowed += decision.allowed
        assert decision.allowed or decision.retry_after_s > 0
    assert allowed <= burst + per_s * (now - start) + 1e-6


def test_limiter_keeps_one_bucket_per_client_with_an_injected_clock() -> None:
    clock = Clock()
    limiter, rate = RateLimiter(clock=clock), Rate(per_s=1, burst=2)
    assert [limiter.hit("a", rate).allowed for _ in range(3)] == [True, True, False]
    assert limiter.hit("b", rate).allowed  # another client has its own bucket
    clock.now += 1.0
    assert limiter.hit("a", rate).allowed


def test_limiter_memory_is_bounded() -> None:
    clock = Clock()
    limiter, rate = RateLimiter(clock=clock, max_clients=100), Rate(per_s=1, burst=5)
    for n in range(1000):
        limiter.hit(f"ip:{n}", rate)
        clock.now += 0.01
    assert len(limiter._tats) <= 100


def test_client_address_trusts_forwarded_for_only_as_configured() -> None:
    assert client_address("10.0.0.1", "1.2.3.4", 0) == "10.0.0.1"  # not trusted: spoofable
    assert client_address("10.0.0.1", "6.6.6.6, 1.2.3.4", 1) == "1.2.3.4"
    assert client_address("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.9", 2) == "1.2.3.4"
    assert client_address("10.0.0.1", "1.2.3.4", 3) == "1.2.3.4"
    assert client_address("10.0.0.1", None, 1) == "10.0.0.1"
    assert client_address(None, None, 0) == "unknown"


def test_policy_header_names_bucket_and_refill_window() -> None:
    assert policy_header(Rate(20, 60)) == b'"bucket";q=60;w=3'


# ---------------------------------------------------------------- the middleware (pure ASGI)


def _scope(path: str = "/v1/latest", headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "headers": headers or [],
        "client": ("192.0.2.7", 5555),
    }


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _call(mw: RateLimitMiddleware, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    asyncio.run(mw(scope, receive, send))
    return sent


def test_middleware_costs_well_under_0_2_ms_per_request() -> None:
    mw = RateLimitMiddleware(
        _ok, keys=ApiKeys([ApiKey(secret=KEY)]), anonymous=Rate(1e9, 10**9), keyed=Rate(1e9, 10**9)
    )
    headers = [(b"host", b"x"), (b"accept", b"*/*"), (b"x-api-key", KEY.encode())]

    async def run(app: Any, n: int) -> float:
        async def send(message: Message) -> None:
            return None

        async def receive() -> Message:
            return {"type": "http.request"}

        start = time.perf_counter()
        for i in range(n):
            scope = _scope(headers=headers if i % 2 else [(b"host", b"x")])
            await app(scope, receive, send)
        return (time.perf_counter() - start) / n

    n = 20_000
    overhead = asyncio.run(run(mw, n)) - asyncio.run(run(_ok, n))
    assert overhead < 0.2e-3, f"{overhead * 1e6:.1f} µs per request"


def test_middleware_answers_429_problem_with_retry_after() -> None:
    mw = RateLimitMiddleware(_ok, keys=ApiKeys([]), anonymous=Rate(1, 2), keyed=Rate(1, 2))
    assert _call(mw, _scope())[0]["status"] == 200
    assert _call(mw, _scope())[0]["status"] == 200
    start, body = _call(mw, _scope())
    headers = dict(start["headers"])
    assert start["status"] == 429
    assert headers[b"content-type"] == b"application/problem+json"
    assert int(headers[b"retry-after"]) >= 1
    assert b'"status":429' in body["body"]


def test_middleware_leaves_liveness_metrics_and_docs_alone() -> None:
    mw = RateLimitMiddleware(_ok, keys=ApiKeys([]), anonymous=Rate(1, 1), keyed=Rate(1, 1))
    for path in ("/livez", "/metrics", "/docs", "/openapi.json") * 3:
        assert _call(mw, _scope(path))[0]["status"] == 200


@pytest.mark.parametrize("path", ["/readyz", "/health"])
def test_readiness_is_limited_like_any_route_that_may_ask_a_store(path: str) -> None:
    mw = RateLimitMiddleware(_ok, keys=ApiKeys([]), anonymous=Rate(1, 1), keyed=Rate(1, 1))
    assert [_call(mw, _scope(path))[0]["status"] for _ in range(2)] == [200, 429]


# ---------------------------------------------------------------- wired into the app


def _client(**api: Any) -> TestClient:
    settings = Settings(api=ApiSettings(**api))
    # no data: these tests are about the limits
    return TestClient(create_app(settings, store=FakeStore()))


def test_anonymous_clients_get_429_after_the_burst() -> None:
    client = _client(rate_anonymous_per_s=1, rate_anonymous_burst=5, api_keys=[KEY])
    answers = [client.get("/v1/latest") for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    refused = answers[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    problem = refused.json()
    assert problem["status"] == 429 and problem["title"] == "Too many requests"
    assert problem["instance"] == "/v1/latest"
    assert answers[0].headers["ratelimit-policy"] == '"bucket";q=5;w=5'
    assert answers[0].headers["ratelimit"].startswith('"bucket";r=4;')
    assert client.get("/openapi.json").status_code == 200  # documentation is never limited


@pytest.mark.parametrize("configured", [KEY, f"{KEY}:read", f"{KEY}:admin"])
def test_a_key_of_either_scope_has_its_own_higher_limit(configured: str) -> None:
    client = _client(
        rate_anonymous_per_s=1,
        rate_anonymous_burst=2,
        rate_keyed_per_s=1,
        rate_keyed_burst=20,
        api_keys=[configured],
    )
    assert [client.get("/v1/latest").status_code for _ in range(3)][-1] == 429
    keyed = [client.get("/v1/latest", headers={"X-API-Key": KEY}) for _ in range(21)]
    assert [a.status_code for a in keyed] == [200] * 20 + [429]


def test_an_invalid_key_is_401_problem_even_on_open_routes() -> None:
    client = _client(api_keys=[KEY])
    answer = client.get("/v1/latest", headers={"X-API-Key": "not-a-key-0123456789"})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["title"] == "Unauthorized"
    assert "www-authenticate" in answer.headers


def test_zero_rate_turns_the_limit_off() -> None:
    client = _client(rate_anonymous_per_s=0, rate_anonymous_burst=1)
    assert all(client.get("/v1/latest").status_code == 200 for _ in range(20))


def test_openapi_documents_429_and_the_api_key_scheme() -> None:
    schema = _client().get("/openapi.json").json()
    assert "429" in schema["paths"]["/v1/latest"]["get"]["responses"]
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schema["components"]["securitySchemes"]["ApiKey"]["description"],
    }
