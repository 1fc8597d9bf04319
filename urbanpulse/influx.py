"""One place that builds InfluxDB clients from settings (URL, token, organisation, timeout)."""

from __future__ import annotations

from influxdb_client import InfluxDBClient

from urbanpulse.settings import InfluxSettings


def make_client(settings: InfluxSettings, *, timeout_ms: int | None = None) -> InfluxDBClient:
    """An InfluxDB client for the configured server; ``timeout_ms`` overrides the setting."""
    return InfluxDBClient(
        url=settings.url,
        token=settings.token.get_secret_value(),
        org=settings.org,
        timeout=settings.timeout_ms if timeout_ms is None else timeout_ms,
    )
