"""/livez, /readyz and /health over a fake store: what each checks, who sees details, and
that readiness asks its dependencies at most once per period however often it is asked."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.health import Readiness
from tests.unit.api.fakes import FakeStore
from urbanpulse.settings import ApiSettings, KafkaSettings, Settings

ADMIN = "admin-key-0123456789abcdef"
READER = "read-key-0123456789abcdef"


@dataclass
class PingStore(FakeStore):
    """A store whose ``/ping`` answers as told, counting the pings."""

    up: bool = True
    pings: int = 0

    def ping(self) -> bool:
        self.pings += 1
        if not self.up:
            raise ConnectionError("connection refused")
        return True


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_client(store: PingStore, **api: Any) -> TestClient:
    settings = Settings(
        api=ApiSettings(
            **({"api_keys": [f"{ADMIN}:admin", READER], "stream_enabled": False} | api)
        ),
        kafka=KafkaSettings(bootstrap=f"127.0.0.1:{closed_port()}"),
    )
    return TestClient(create_app(settings, store=store))


def test_liveness_asks_nothing_and_is_never_limited() -> None:
    store = PingStore(up=False)
    client = app_client(store, rate_anonymous_per_s=1, rate_anonymous_burst=1)
    for _ in range(5):
        answer = client.get("/livez")
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    assert store.pings == 0


@pytest.mark.parametrize("path", ["/readyz", "/health"])
def test_readiness_shows_details_to_admin_keys_only(path: str) -> None:
    client = app_client(PingStore())
    for headers in ({}, {"X-API-Key": READER}):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}
        assert answer.headers["cache-control"] == "no-store"
    detailed = client.get(path, headers={"X-API-Key": ADMIN}).json()
    assert detailed["status"] == "ok"
    assert set(detailed["dependencies"]) == {"influxdb"}  # no MQTT; no Kafka: feed is off
    assert detailed["dependencies"]["influxdb"]["ok"] is True


@pytest.mark.parametrize("path", ["/readyz", "/health"])
def test_a_store_that_does_not_answer_is_503_without_its_error_for_anonymous(path: str) -> None:
    client = app_client(PingStore(up=False), ready_cache_s=0)
    answer = client.get(path)
    assert answer.status_code == 503 and answer.json() == {"status": "unavailable"}
    detailed = client.get(path, headers={"X-API-Key": ADMIN})
    assert detailed.status_code == 503
    influx = detailed.json()["dependencies"]["influxdb"]
    assert influx["ok"] is False and "connection refused" in influx["detail"]


def test_kafka_is_checked_only_while_the_live_feed_is_on() -> None:
    on = app_client(PingStore(), stream_enabled=True, ready_cache_s=0)
    answer = on.get("/readyz", headers={"X-API-Key": ADMIN})
    assert answer.status_code == 503  # nothing listens on that Kafka port
    assert set(answer.json()["dependencies"]) == {"influxdb", "kafka"}
    assert answer.json()["dependencies"]["kafka"]["ok"] is False
    assert on.get("/v1/stream").status_code != 404
    off = app_client(PingStore(), stream_enabled=False)
    assert off.get("/readyz").status_code == 200
    assert off.get("/v1/stream").status_code == 404  # no feed, no route
    assert "/v1/stream" not in off.get("/openapi.json").json()["paths"]


def test_readiness_asks_the_store_once_per_period_however_often_it_is_asked() -> None:
    store = PingStore()
    client = app_client(store, ready_cache_s=3600)
    for path in ("/readyz", "/health") * 25:
        assert client.get(path).status_code == 200
    assert store.pings == 1


def test_concurrent_callers_share_one_check_and_it_is_renewed_after_the_period() -> None:
    store, now = PingStore(), [0.0]
    readiness = Readiness(
        settings=Settings(api=ApiSettings(ready_cache_s=5)), store=store, clock=lambda: now[0]
    )

    async def ask(times: int) -> set[str]:
        results = await asyncio.gather(*(readiness.check() for _ in range(times)))
        return {r.status for r in results}

    assert asyncio.run(ask(20)) == {"ok"} and store.pings == 1
    now[0] = 4.9
    asyncio.run(ask(5))
    assert store.pings == 1
    now[0] = 5.0
    store.up = False
    assert asyncio.run(ask(5)) == {"unavailable"} and store.pings == 2


def test_a_kafka_check_reuses_its_probe() -> None:
    calls: list[int] = []
    readiness = Readiness(
        settings=Settings(api=ApiSettings(ready_cache_s=0)),
        store=PingStore(),
        kafka=lambda: calls.append(1) or "1 broker(s) answer",  # type: ignore[func-returns-value]
    )
    for _ in range(3):
        result = asyncio.run(readiness.check())
        assert result.dependencies is not None and result.dependencies["kafka"].ok
    assert len(calls) == 3
