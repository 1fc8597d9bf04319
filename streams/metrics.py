"""Prometheus metrics and a health endpoint of the stream worker (``MetricsSettings.worker_port``).

What is exported (docs/production.md lists them with their meaning):

- ``urbanpulse_worker_influx_write_seconds{kind}``: duration of each InfluxDB write request,
  retries included (``kind`` raw, aggregate or alert; one request holding aggregates and
  alerts counts as ``aggregate``);
- ``urbanpulse_worker_snapshot_seconds{table}``: duration of each snapshot that saved states
  (``sensor``: aggregates written, states sent, Kafka's confirmations, acks; ``district``);
  batches of that table wait for it;
- ``urbanpulse_worker_points_written_total{kind}``: points InfluxDB accepted;
- ``urbanpulse_worker_readings_total{outcome}``: readings taken from Kafka, by what became of
  them: ``stored``, ``deadletter``, ``duplicate``; ``flagged`` counts the stored readings that
  carry a quality flag (a subset of ``stored``);
- ``urbanpulse_worker_alerts_total{rule,state}``: alert episodes opened and closed;
- ``urbanpulse_worker_consumer_lag{topic,partition}``: messages of this worker's partitions
  not yet committed (high watermark - committed offset), refreshed every few seconds.

``/health`` answers 200 ``{"status": "ok"}`` while the lag refresh keeps succeeding (so the
event loop runs and Kafka answers), 503 before the first refresh and once it stalls
(``stalled``), and 503 ``no_progress`` while a partition has lag but its committed offset has
not moved for :data:`NO_PROGRESS_S` (a batch stuck on InfluxDB, a consumer that stopped
fetching): a worker that stores nothing says so within a minute (issue 15).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from streams.alerts import AlertEvent
from streams.watchdog import StallWatch
from urbanpulse.model import Reading

log = logging.getLogger(__name__)

LAG_REFRESH_S = 5.0
# /health turns 503 when the lag has not been refreshed for this many refresh periods.
STALL_PERIODS = 6
# /health turns 503 when a partition with lag has not committed for this long (checked at
# each lag refresh, so it shows within NO_PROGRESS_S + LAG_REFRESH_S: under a minute).
NO_PROGRESS_S = 50.0
WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

TopicPartition = tuple[str, int]


def consumer_lag(highwater: int | None, committed: int | None, earliest: int | None) -> int:
    """Messages of one partition not yet processed: high watermark - next offset to process.

    Kafka's committed offset (like Faust's) is the next offset to read. With nothing committed
    yet the group starts at the earliest offset still kept; an unknown high watermark (no fetch
    yet) or an offset past it (a commit racing the refresh) counts as no lag.
    """
    if highwater is None:
        return 0
    start = committed if committed is not None and committed >= 0 else earliest
    return max(0, highwater - (start or 0))


def partition_lags(
    assigned: Iterable[TopicPartition],
    highwaters: Mapping[TopicPartition, int | None],
    committed: Mapping[TopicPartition, int | None],
    earliest: Mapping[TopicPartition, int | None],
) -> dict[TopicPartition, int]:
    """The lag of every assigned partition (see :func:`consumer_lag`)."""
    return {
        tp: consumer_lag(highwaters.get(tp), committed.get(tp), earliest.get(tp)) for tp in assigned
    }


@dataclass(frozen=True)
class Health:
    """The worker's health as ``/health`` reports it."""

    status: str
    partitions: int
    last_refresh_age_s: float | None
    partitions_without_progress: int = 0

    @property
    def http_status(self) -> int:
        """200 when healthy, 503 otherwise."""
        return 200 if self.status == "ok" else 503


def health_of(
    last_refresh: float | None, partitions: int, now: float, without_progress: int = 0
) -> Health:
    """``starting`` before the first lag refresh, ``stalled`` when refreshes stopped,
    ``no_progress`` when ``without_progress`` partitions have lag and stand still, else ok."""
    if last_refresh is None:
        return Health("starting", partitions, None)
    age = round(now - last_refresh, 3)
    if age > LAG_REFRESH_S * STALL_PERIODS:
        status = "stalled"
    else:
        status = "no_progress" if without_progress else "ok"
    return Health(status, partitions, age, without_progress)


class WorkerMetrics:
    """The worker's own registry (never the global one: tests build many workers)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.write_seconds = Histogram(
            "urbanpulse_worker_influx_write_seconds",
            "duration of each InfluxDB write request of the worker, retries included",
            ["kind"],
            buckets=WRITE_BUCKETS,
            registry=self.registry,
        )
        self.snapshot_seconds = Histogram(
            "urbanpulse_worker_snapshot_seconds",
            "duration of each snapshot that saved states (batches wait for it)",
            ["table"],
            buckets=WRITE_BUCKETS,
            registry=self.registry,
        )
        self.points = Counter(
            "urbanpulse_worker_points_written",
            "points InfluxDB accepted from the worker",
            ["kind"],
            registry=self.registry,
        )
        self.readings = Counter(
            "urbanpulse_worker_readings",
            "readings taken from Kafka by outcome (flagged: stored with a quality flag)",
            ["outcome"],
            registry=self.registry,
        )
        self.alerts = Counter(
            "urbanpulse_worker_alerts",
            "alert episodes opened and closed",
            ["rule", "state"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "urbanpulse_worker_consumer_lag",
            "messages of this worker's partitions not processed and committed yet",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.last_refresh: float | None = None
        self._partitions = 0
        self.progress = StallWatch(NO_PROGRESS_S)  # reset by the app while it rebalances
        self._without_progress = 0

    @contextmanager
    def timed_write(self, kind: str, points: Mapping[str, int]) -> Iterator[None]:
        """Time one write request as ``kind``; count ``points`` (kind → count) if it succeeds.

        A write of no points sends no request (``InfluxWriter`` returns at once): not timed.
        """
        if not any(points.values()):
            yield
            return
        start = time.perf_counter()
        try:
            yield
        finally:
            self.write_seconds.labels(kind).observe(time.perf_counter() - start)
        for point_kind, count in points.items():
            if count:
                self.points.labels(point_kind).inc(count)

    def count_readings(self, stored: Collection[Reading], deadletter: int, duplicate: int) -> None:
        """Count one batch's readings by outcome."""
        flagged = sum(1 for r in stored if r.quality_flags)
        for outcome, count in (
            ("stored", len(stored)),
            ("deadletter", deadletter),
            ("duplicate", duplicate),
            ("flagged", flagged),
        ):
            if count:
                self.readings.labels(outcome).inc(count)

    def count_alerts(self, alerts: Iterable[AlertEvent]) -> None:
        """Count alert episodes opened and closed, by rule."""
        for alert in alerts:
            self.alerts.labels(alert.rule, alert.state).inc()

    def set_lags(
        self,
        lags: Mapping[TopicPartition, int],
        now: float,
        committed: Mapping[TopicPartition, int | None] | None = None,
    ) -> None:
        """Replace the lag gauges (partitions no longer assigned disappear); with the
        ``committed`` offsets, also note which partitions with lag made no progress."""
        self.lag.clear()
        for (topic, partition), lag in lags.items():
            self.lag.labels(topic, str(partition)).set(lag)
        self._partitions = len(lags)
        self.last_refresh = now
        if committed is not None:
            offsets = {tp: (committed.get(tp), lag) for tp, lag in lags.items()}
            self._without_progress = len(self.progress.observe(offsets, False, now))

    def health(self) -> Health:
        """The current health (see :func:`health_of`)."""
        return health_of(
            self.last_refresh, self._partitions, time.monotonic(), self._without_progress
        )

    def wsgi_app(self) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
        """``/health`` as JSON, everything else the Prometheus exposition of the registry."""
        metrics = make_wsgi_app(self.registry)

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != "/health":
                exposition: Iterable[bytes] = metrics(environ, start_response)
                return exposition
            health = self.health()
            status = "200 OK" if health.http_status == 200 else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [json.dumps(asdict(health)).encode()]

        return app

    def serve(self, host: str, port: int) -> None:
        """Serve /metrics and /health on host:port in a background thread (port 0: not at all)."""
        if not port:
            return
        try:
            server = make_server(
                host, port, self.wsgi_app(), ThreadingWSGIServer, handler_class=_QuietHandler
            )
        except OSError as err:  # e.g. a second worker on one host: storing data matters more
            log.error("metrics not served: cannot listen on %s:%d (%s)", host, port, err)
            return
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
        log.info("metrics on http://%s:%d/metrics, health on /health", host, port)


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        """Drop the line."""


async def refresh_lag(consumer: Any, metrics: WorkerMetrics, topics: Collection[str]) -> None:
    """Read this worker's offsets from Faust's consumer and update the lag gauges.

    The committed offsets are Faust's own record of what it committed (``_committed_offset``,
    loaded from Kafka at assignment, updated at each commit): no request to Kafka for them.
    The high watermarks and, where nothing is committed yet, the earliest offsets are asked of
    the brokers (``end_offsets`` / ``beginning_offsets`` in the consumer's thread). A failure
    (a rebalance, Kafka away) leaves the gauges as they were and lets ``/health`` age.
    """
    try:
        assigned = [tp for tp in consumer.assignment() if tp.topic in topics]
        committed = {tp: consumer._committed_offset.get(tp) for tp in assigned}
        highwaters = await consumer.highwaters(*assigned) if assigned else {}
        unknown = [tp for tp, offset in committed.items() if offset is None]
        earliest = await consumer.earliest_offsets(*unknown) if unknown else {}
    except Exception as err:  # a timer that raises would stop the worker
        log.warning("consumer lag not refreshed: %r", err)
        return
    # Faust's TP is a (topic, partition) named tuple: usable as the plain tuple key.
    lags = partition_lags(assigned, highwaters, committed, earliest)
    metrics.set_lags(lags, time.monotonic(), committed)
