"""Reads SensorThings Observations from InfluxDB (the SensorThings routes' one data adapter)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from api.flux import FluxQuery
from api.formats import rfc3339
from api.influx_store import FluxRunner
from api.sta.flux import ObservationQuery, observations_count_query, observations_page_query
from urbanpulse.settings import InfluxSettings


@dataclass(frozen=True)
class StaReading:
    """One raw reading with what an Observation shows of it."""

    time: datetime
    tenant: str
    sensor_id: str
    quantity: str
    value: float
    received_at: str | None
    quality_flags: tuple[str, ...]
    lat: float | None
    lon: float | None


class ObservationSource(Protocol):
    """Where the routes get readings from (InfluxDB; a test may pass its own)."""

    def readings(self, query: ObservationQuery) -> list[StaReading]:
        """One page of readings."""

    def count(self, query: ObservationQuery) -> int:
        """How many readings match, ignoring the page."""


class InfluxObservations:
    """Runs the SensorThings Flux queries against the raw bucket."""

    def __init__(self, settings: InfluxSettings) -> None:
        self._settings = settings
        self._flux = FluxRunner(settings)

    def readings(self, query: ObservationQuery) -> list[StaReading]:
        """One page of readings, in the query's order."""
        flux = observations_page_query(self._settings.raw_bucket, query)
        return [_reading(row) for row in self._rows(flux)]

    def count(self, query: ObservationQuery) -> int:
        """How many readings match the query's range, series and filter."""
        flux = observations_count_query(self._settings.raw_bucket, query)
        return sum(int(row.get("value") or 0) for row in self._rows(flux))

    def close(self) -> None:
        """Release the HTTP connections."""
        self._flux.close()

    def _rows(self, query: FluxQuery) -> Iterator[dict[str, Any]]:
        return self._flux.rows(query)


def _rfc3339(text: str | None) -> str | None:
    """The stored receipt time (Python isoformat) as RFC 3339 UTC with ``Z``."""
    if not text:
        return None
    try:
        return rfc3339(datetime.fromisoformat(text))
    except ValueError:
        return text  # written by something else: show it as it is


def _reading(row: dict[str, Any]) -> StaReading:
    flags = row.get("quality_flags") or ""
    return StaReading(
        time=row["_time"],
        tenant=row["tenant"],
        sensor_id=row["sensor_id"],
        quantity=row["quantity"],
        value=row["value"],
        received_at=_rfc3339(row.get("received_at")),  # only if a query selects it
        quality_flags=tuple(f for f in flags.split(",") if f),
        lat=row.get("lat"),
        lon=row.get("lon"),
    )
