"""Reads observations and sensors from InfluxDB (the API's one I/O adapter for data)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from influxdb_client import InfluxDBClient

from api.flux import FluxQuery, ObservationFilter, observations_query, sensors_query
from api.formats import Observation
from api.sensors import Sensor, sensors_from_rows
from urbanpulse.settings import InfluxSettings


class InfluxStore:
    """Runs the API's Flux queries."""

    def __init__(self, settings: InfluxSettings) -> None:
        self._settings = settings
        self._client = InfluxDBClient(
            url=settings.url,
            token=settings.token.get_secret_value(),
            org=settings.org,
            timeout=settings.timeout_ms,
        )

    def observations(self, flt: ObservationFilter) -> list[Observation]:
        """Raw readings matching the filter, in keyset order."""
        return [_observation(row) for row in self._rows(observations_query(self._bucket, flt))]

    def sensors(self, since: datetime, tenant: str | None) -> list[Sensor]:
        """Every sensor that reported since ``since``."""
        return sensors_from_rows(self._rows(sensors_query(self._bucket, since, tenant)))

    def ping(self) -> bool:
        """True when InfluxDB answers."""
        return bool(self._client.ping())

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()

    @property
    def _bucket(self) -> str:
        return self._settings.raw_bucket

    def _rows(self, query: FluxQuery) -> Iterator[dict[str, Any]]:
        api = self._client.query_api()
        if self._settings.flux_params == "extern":
            tables = api.query(query.text, org=self._settings.org, params=query.params)
        else:
            tables = api.query(query.inline(), org=self._settings.org)
        for table in tables:
            for record in table.records:
                yield record.values


def _observation(row: dict[str, Any]) -> Observation:
    flags = row.get("quality_flags") or ""
    return Observation(
        time=row["_time"],
        tenant=row["tenant"],
        sensor_id=row["sensor_id"],
        quantity=row["quantity"],
        value=row["value"],
        unit=row.get("unit") or "",
        lat=row.get("lat"),
        lon=row.get("lon"),
        quality_flags=[f for f in flags.split(",") if f],
    )
