"""What the routes need from the data store (protocols): the seam between HTTP and InfluxDB.

:class:`api.influx_store.InfluxStore` implements :class:`Store` against InfluxDB; unit tests pass
a fake that answers from lists. Each read takes one filter of :mod:`api.filters`, already
checked, and returns rows in keyset order.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

from api.filters import AggregateFilter, AlertFilter, DayCountFilter, ObservationFilter
from api.formats import Aggregate, Alert, Observation
from api.kpi_filters import HourlyFilter, KpiFilter, KpiRow
from api.sensors import Sensor
from urbanpulse.experiments import HourlyMean

DayCountRow = tuple[str, str, datetime, int]  # (tenant, quantity, UTC day start, readings)


class CountSource(Protocol):
    """Where daily reading counts come from (the bulk listing and the catalogue)."""

    def daily_counts(self, flt: DayCountFilter) -> list[DayCountRow]:
        """(tenant, quantity, UTC day start, readings) for every day with readings."""
        ...


class RowSource(CountSource, Protocol):
    """Where a bulk file's rows come from."""

    def observation_stream(self, flt: ObservationFilter) -> Iterator[Observation]:
        """Raw readings matching the filter, read lazily."""
        ...


class Store(RowSource, Protocol):
    """Every read the open-data routes make."""

    def sensors(
        self, since: datetime, tenant: str | None, allowed: tuple[str, ...] = ()
    ) -> list[Sensor]:
        """Every sensor that reported since ``since`` (only ``allowed`` quantities, if given)."""
        ...

    def observations(self, flt: ObservationFilter) -> list[Observation]:
        """Raw readings matching the filter, in keyset order."""
        ...

    def aggregates(self, flt: AggregateFilter) -> list[Aggregate]:
        """Window aggregates matching the filter, in keyset order."""
        ...

    def alerts(self, flt: AlertFilter) -> list[Alert]:
        """Alert episodes matching the filter, in keyset order."""
        ...

    def ping(self) -> bool:
        """True when the store answers (``/health``)."""
        ...

    def kpis(self, flt: KpiFilter) -> list[KpiRow]:
        """Stored indicator points (one JSON field each, unparsed), in no particular order."""
        ...

    def hourly_means(self, flt: HourlyFilter) -> list[HourlyMean]:
        """Hourly means and reading counts of open sensors (experiments), in no order."""
        ...
