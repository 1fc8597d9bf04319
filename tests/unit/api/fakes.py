"""A data store for route tests: answers from lists, records every filter it is asked.

It implements :class:`api.store.Store` (mypy checks it where a test passes it to
``create_app``), and pages like the real one: rows come back in keyset order, after the
filter's cursor, at most ``limit`` of them, so a test can walk ``next`` links to the end.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from api.filters import (
    AggregateFilter,
    AlertFilter,
    DayCountFilter,
    ObservationFilter,
)
from api.formats import Aggregate, Alert, Observation
from api.kpi_filters import HourlyFilter, KpiFilter, KpiRow
from api.sensors import Sensor
from api.store import DayCountRow, Store
from urbanpulse.experiments import HourlyMean
from urbanpulse.kpi import Indicators
from urbanpulse.settings import ApiSettings, KafkaSettings, Settings

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class SensorsAsked:
    """One call of :meth:`FakeStore.sensors`."""

    since: datetime
    tenant: str | None
    allowed: tuple[str, ...]


@dataclass
class FakeStore:
    """Rows to answer with, and what was asked."""

    recent: list[Sensor] = field(default_factory=list)
    readings: list[Observation] = field(default_factory=list)
    windows: list[Aggregate] = field(default_factory=list)
    episodes: list[Alert] = field(default_factory=list)
    counts: list[DayCountRow] = field(default_factory=list)
    sensor_calls: list[SensorsAsked] = field(default_factory=list)
    observation_filters: list[ObservationFilter] = field(default_factory=list)
    aggregate_filters: list[AggregateFilter] = field(default_factory=list)
    alert_filters: list[AlertFilter] = field(default_factory=list)
    count_filters: list[DayCountFilter] = field(default_factory=list)
    indicators: list[Indicators] = field(default_factory=list)
    hours: list[HourlyMean] = field(default_factory=list)
    kpi_filters: list[KpiFilter] = field(default_factory=list)
    hourly_filters: list[HourlyFilter] = field(default_factory=list)

    def sensors(
        self, since: datetime, tenant: str | None, allowed: tuple[str, ...] = ()
    ) -> list[Sensor]:
        self.sensor_calls.append(SensorsAsked(since=since, tenant=tenant, allowed=allowed))
        return [s for s in self.recent if tenant in (None, s.tenant)]

    def observations(self, flt: ObservationFilter) -> list[Observation]:
        self.observation_filters.append(flt)
        rows = sorted(self.readings, key=_observation_key)
        after = [r for r in rows if flt.after is None or _observation_key(r) > flt.after]
        return after[: flt.limit]

    def observation_stream(self, flt: ObservationFilter) -> Iterator[Observation]:
        return iter(self.observations(flt))

    def aggregates(self, flt: AggregateFilter) -> list[Aggregate]:
        self.aggregate_filters.append(flt)
        rows = sorted(self.windows, key=_aggregate_key)
        after = [r for r in rows if flt.after is None or _aggregate_key(r) > flt.after]
        return after[: flt.limit]

    def alerts(self, flt: AlertFilter) -> list[Alert]:
        self.alert_filters.append(flt)
        rows = sorted(self.episodes, key=_alert_key)
        after = [r for r in rows if flt.after is None or _alert_key(r) > flt.after]
        return after[: flt.limit]

    def daily_counts(self, flt: DayCountFilter) -> list[DayCountRow]:
        self.count_filters.append(flt)
        return list(self.counts)

    def ping(self) -> bool:
        return True

    def kpis(self, flt: KpiFilter) -> list[KpiRow]:
        """The stored indicators the filter names, as the InfluxDB store answers them."""
        self.kpi_filters.append(flt)
        return [
            KpiRow(
                tenant=i.tenant,
                scope=i.scope,
                subject=i.subject,
                period=i.period,
                time=i.start.isoformat().replace("+00:00", "Z"),
                document=i.summary_json() if flt.document == "summary" else i.to_json(),
            )
            for i in self.indicators
            if (i.scope, i.period) == (flt.scope, flt.period)
            and flt.tenant in (None, i.tenant)
            and (not flt.subjects or i.subject in flt.subjects)
            and flt.start <= i.start < flt.stop
        ]

    def hourly_means(self, flt: HourlyFilter) -> list[HourlyMean]:
        self.hourly_filters.append(flt)
        return [
            h for h in self.hours if h.sensor_id in flt.sensors and flt.start <= h.start < flt.stop
        ]

    @property
    def data_queries(self) -> Sequence[object]:
        """Every observation, aggregate and alert filter asked, in no particular order."""
        return [*self.observation_filters, *self.aggregate_filters, *self.alert_filters]


def _observation_key(row: Observation) -> tuple[datetime, str, str, str]:
    return row.time, row.tenant, row.sensor_id, row.quantity


def _aggregate_key(row: Aggregate) -> tuple[datetime, str, str, str]:
    return row.window_start, row.tenant, row.sensor_id or row.district or "", row.quantity


def _alert_key(row: Alert) -> tuple[datetime, str, str, str, str]:
    return row.started_at, row.tenant, row.sensor_id, row.rule, row.quantity


def client_for(store: Store, **api: Any) -> TestClient:
    """A test client of an app over ``store``, its clock stopped at :data:`NOW`; ``api`` are
    settings of :class:`ApiSettings` (the rate limit is off unless one is given)."""
    settings = Settings(
        api=ApiSettings(**({"rate_anonymous_per_s": 0} | api)),
        # never reached: the live feed connects only when a client streams
        kafka=KafkaSettings(bootstrap="127.0.0.1:9"),
    )
    return TestClient(create_app(settings, store=store, clock=lambda: NOW))
