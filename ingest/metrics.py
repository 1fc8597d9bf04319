"""Prometheus metrics of the ingestor: read from its counters at scrape time, plus ack latency."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingest.stats import Stats


class _StatsCollector(Collector):
    """Exposes the ingestor's own counters, so they are counted once, in one place."""

    def __init__(self, stats: Stats, in_flight: Callable[[], int]) -> None:
        self._stats = stats
        self._in_flight = in_flight

    def collect(self) -> Iterator[Metric]:
        """Yield the current values (called by the Prometheus client on each scrape)."""
        stats = self._stats
        yield CounterMetricFamily(
            "urbanpulse_ingest_messages_received", "MQTT messages taken", value=stats.received
        )
        yield CounterMetricFamily(
            "urbanpulse_ingest_readings", "readings written to Kafka", value=stats.readings
        )
        yield CounterMetricFamily(
            "urbanpulse_ingest_kafka_records",
            "Kafka records written (each holds a batch of readings)",
            value=stats.records,
        )
        yield CounterMetricFamily(
            "urbanpulse_ingest_messages_acked", "MQTT messages acknowledged", value=stats.acked
        )
        yield CounterMetricFamily(
            "urbanpulse_ingest_personal_dropped",
            "readings of personal quantities dropped at ingest",
            value=stats.dropped_personal,
        )
        dead = CounterMetricFamily(
            "urbanpulse_ingest_dead_letters", "messages dead-lettered, by reason", labels=["reason"]
        )
        for reason, count in sorted(stats.dead_letters.items()):
            dead.add_metric([reason], count)
        yield dead
        yield GaugeMetricFamily(
            "urbanpulse_ingest_in_flight", "messages taken, not yet acked", value=self._in_flight()
        )


class IngestMetrics:
    """The ingestor's registry: its counters plus the Kafka acknowledgement latency."""

    def __init__(self, stats: Stats, in_flight: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StatsCollector(stats, in_flight))
        self.ack_latency = Histogram(
            "urbanpulse_ingest_kafka_ack_seconds",
            "time from taking an MQTT message to Kafka confirming all its readings",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )

    def serve(self, host: str, port: int) -> None:
        """Serve /metrics on host:port in a background thread (port 0: not at all)."""
        if port:
            start_http_server(port, addr=host, registry=self.registry)
