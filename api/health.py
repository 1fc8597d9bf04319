"""Whether this API process can serve: the readiness checks behind ``/readyz`` and ``/health``.

Readiness asks only what the API itself needs: InfluxDB (every data route reads it) and, when
the live feed ``/v1/stream`` is on (``api.stream_enabled``), Kafka. Not MQTT: the API never
talks to the broker, and an MQTT outage must not take a read-only API out of a load balancer.

Cheap whatever the request rate: an answer is reused for ``api.ready_cache_s`` seconds, and
concurrent callers share the one check in flight, so the dependencies see at most one check
per period per process. The Kafka check reuses one admin client for the life of the process
(no new connection per call). A failed check is logged, so that an anonymous caller (who gets
only ``status``) and the logs together tell an operator what is wrong.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka.admin import AdminClient
from pydantic import BaseModel

from api.store import Store
from urbanpulse.kafka import client_config
from urbanpulse.settings import KafkaSettings, Settings
from urbanpulse.supervisor_status import SupervisionHealth, supervision_health

log = logging.getLogger(__name__)

TIMEOUT_S = 2.0  # a dependency that takes longer counts as down for this check


class DependencyStatus(BaseModel):
    """Whether one dependency answered, and how fast or why not."""

    ok: bool
    detail: str
    latency_ms: float


class Health(BaseModel):
    """Whether this API process can serve: ``ok`` only when every dependency it needs answers.

    ``dependencies`` and ``supervisor`` are shown only to callers with an ``admin`` API key.
    ``supervisor`` (under ``urbanpulse up``) tells which components run, restart or
    crash-loop; it does not change ``status``: the API serves what is stored while ingest or
    the worker are down, and a load balancer must keep sending it requests.
    """

    status: str
    dependencies: dict[str, DependencyStatus] | None = None
    supervisor: SupervisionHealth | None = None

    def public(self) -> Health:
        """What anybody may see: the status alone, no addresses, versions or error texts."""
        return Health(status=self.status)


class KafkaProbe:
    """Asks Kafka for the observations topic's metadata, over one admin client kept for the
    life of the process (librdkafka reconnects it by itself)."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._admin: AdminClient | None = None

    def __call__(self) -> str:
        """Who answered, or an exception when Kafka did not within :data:`TIMEOUT_S`."""
        if self._admin is None:
            self._admin = AdminClient(client_config(self._settings) | {"socket.timeout.ms": "2000"})
        topic = self._settings.observations_topic
        metadata = self._admin.list_topics(topic=topic, timeout=TIMEOUT_S)
        return f"{len(metadata.brokers)} broker(s) answer"


def _influx(store: Store) -> str:
    if not store.ping():
        raise ConnectionError("no answer to /ping")
    return "answers /ping"


@dataclass
class Readiness:
    """The readiness checks of one app, reused for ``ttl_s`` seconds and never run twice at
    once."""

    settings: Settings
    store: Store
    clock: Callable[[], float] = time.monotonic
    kafka: Callable[[], str] | None = None  # None: the live feed is off, Kafka is not needed
    _last: tuple[float, Health] | None = None
    _pending: asyncio.Future[Health] | None = field(default=None, init=False)

    @classmethod
    def of(cls, settings: Settings, store: Store) -> Readiness:
        """The checks this process needs: InfluxDB, and Kafka when the live feed is on."""
        kafka = KafkaProbe(settings.kafka) if settings.api.stream_enabled else None
        return cls(settings=settings, store=store, kafka=kafka)

    async def check(self) -> Health:
        """The latest answer, checked again when it is older than ``api.ready_cache_s``."""
        if (hit := self._fresh()) is not None:
            return hit
        pending = self._pending
        if (
            pending is None
            or pending.done()
            or pending.get_loop() is not asyncio.get_running_loop()
        ):
            # The first caller starts the check; the others wait for its answer.
            pending = self._pending = asyncio.ensure_future(self._refresh())
        # shield: a caller that goes away does not cancel the check the others await
        return await asyncio.shield(pending)

    async def _refresh(self) -> Health:
        result = await self._run_checks()
        self._last = (self.clock(), result)
        return result

    def _fresh(self) -> Health | None:
        if self._last is None or self.clock() - self._last[0] >= self.settings.api.ready_cache_s:
            return None
        return self._last[1]

    async def _run_checks(self) -> Health:
        checks: dict[str, Callable[[], str]] = {"influxdb": lambda: _influx(self.store)}
        if self.kafka is not None:
            checks["kafka"] = self.kafka
        results = await asyncio.gather(*(_timed(c) for c in checks.values()))
        dependencies = dict(zip(checks, results, strict=True))
        for name, found in dependencies.items():
            if not found.ok:
                log.warning("readiness: %s is not available: %s", name, found.detail)
        status = "ok" if all(d.ok for d in dependencies.values()) else "unavailable"
        supervisor = supervision_health(self.settings.supervisor.run_dir, datetime.now(UTC))
        return Health(status=status, dependencies=dependencies, supervisor=supervisor)


async def _timed(check: Callable[[], str]) -> DependencyStatus:
    """Run one blocking check in a worker thread, for at most :data:`TIMEOUT_S` seconds."""
    start = time.perf_counter()
    try:
        detail = await asyncio.wait_for(asyncio.to_thread(check), TIMEOUT_S + 0.5)
        ok = True
    except TimeoutError:
        detail, ok = f"no answer within {TIMEOUT_S:g} s", False
    except Exception as err:
        detail, ok = f"{type(err).__name__}: {err}", False
    return DependencyStatus(
        ok=ok, detail=detail, latency_ms=round(1000 * (time.perf_counter() - start), 1)
    )
