"""Reachability checks of the platform's dependencies, for ``GET /health``."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime

from confluent_kafka.admin import AdminClient
from pydantic import BaseModel

from api.store import Store
from urbanpulse.kafka import client_config
from urbanpulse.settings import Settings
from urbanpulse.supervisor_status import SupervisionHealth, supervision_health

TIMEOUT_S = 2.0


class DependencyStatus(BaseModel):
    """Whether one dependency answered, and how fast or why not."""

    ok: bool
    detail: str
    latency_ms: float


class Health(BaseModel):
    """The status of every dependency; ``ok`` only when all of them are.

    ``supervisor`` (under ``urbanpulse up``) tells which components run, restart or
    crash-loop. It does not change ``status``: the API serves what is stored while ingest or
    the worker are down, and a load balancer must keep sending it requests.
    """

    status: str
    dependencies: dict[str, DependencyStatus]
    supervisor: SupervisionHealth | None = None


def _mqtt(settings: Settings) -> str:
    with socket.create_connection((settings.mqtt.host, settings.mqtt.port), timeout=TIMEOUT_S):
        return f"{settings.mqtt.host}:{settings.mqtt.port} accepts connections"


def _kafka(settings: Settings) -> str:
    admin = AdminClient(client_config(settings.kafka) | {"socket.timeout.ms": 2000})
    metadata = admin.list_topics(timeout=TIMEOUT_S)
    return f"{len(metadata.brokers)} broker(s), {len(metadata.topics)} topics"


def _influx(store: Store) -> str:
    if not store.ping():
        raise ConnectionError("no answer to /ping")
    return "answers /ping"


async def check_all(settings: Settings, store: Store) -> Health:
    """Check every dependency concurrently."""
    checks: dict[str, Callable[[], str]] = {
        "mqtt": lambda: _mqtt(settings),
        "kafka": lambda: _kafka(settings),
        "influxdb": lambda: _influx(store),
    }
    results = await asyncio.gather(*(asyncio.to_thread(_run, c) for c in checks.values()))
    dependencies = dict(zip(checks, results, strict=True))
    status = "ok" if all(d.ok for d in dependencies.values()) else "unavailable"
    supervisor = supervision_health(settings.supervisor.run_dir, datetime.now(UTC))
    return Health(status=status, dependencies=dependencies, supervisor=supervisor)


def _run(check: Callable[[], str]) -> DependencyStatus:
    start = time.perf_counter()
    try:
        detail, ok = check(), True
    except Exception as err:
        detail, ok = f"{type(err).__name__}: {err}", False
    return DependencyStatus(
        ok=ok, detail=detail, latency_ms=round(1000 * (time.perf_counter() - start), 1)
    )
