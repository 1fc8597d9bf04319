"""The indicator job's InfluxDB adapter: reads readings and indicators, writes ``kpi`` points.

Answers are read as plain CSV (no annotations) and parsed row by row: a day of a tenant's
readings is hundreds of thousands of rows, which the client's record objects would make
several times slower. Writes are synchronous and retried with back-off until InfluxDB takes
them (an outage delays the job, never loses indicators).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.dialect import Dialect
from tenacity import before_sleep_log, retry, retry_if_exception, wait_exponential

from streams.kpis.indicators import Result, SensorObservations, to_us
from streams.kpis.letters import SensorKey
from streams.kpis.periods import PeriodSpan
from streams.kpis.points import SubjectKey, kpi_point, results_from_rows
from streams.kpis.queries import battery_query, flags_query, received_query, stored_query
from urbanpulse.influx import make_client
from urbanpulse.kpi import Period, Scope
from urbanpulse.settings import InfluxSettings

log = logging.getLogger(__name__)

PLAIN_CSV = Dialect(header=True, annotations=[])
QUERY_TIMEOUT_MS = 300_000  # a whole day of every tenant's readings is one answer
WRITE_BATCH = 5000


def _worth_retrying(err: BaseException) -> bool:
    # 4xx other than 429 means the request itself is wrong; retrying would loop forever.
    status = getattr(err, "status", None)
    return status is None or status == 429 or status >= 500


class KpiStore:
    """Reads the raw and aggregate buckets, writes indicator points to the aggregate bucket."""

    def __init__(self, settings: InfluxSettings) -> None:
        self._settings = settings
        self._client = make_client(settings, timeout_ms=max(settings.timeout_ms, QUERY_TIMEOUT_MS))
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def observations(
        self, span: PeriodSpan, tenant: str | None, scored: frozenset[str]
    ) -> dict[SensorKey, SensorObservations]:
        """What every sensor (of ``tenant``, or all) delivered in the period."""
        raw = self._settings.raw_bucket
        start, stop = span.start, span.end
        stop_us = to_us(stop)
        found: dict[SensorKey, SensorObservations] = {}

        def of(row: dict[str, str]) -> SensorObservations | None:
            key = (row["tenant"], row["sensor_id"])
            if _us(row["_time"]) >= stop_us:  # 1.8's range also returns points on its stop
                return None
            obs = found.get(key)
            if obs is None:
                obs = found[key] = SensorObservations(tenant=key[0], sensor_id=key[1])
            return obs

        for row in self._rows(received_query(raw, start, stop, tenant)):
            if (obs := of(row)) is not None:
                obs.add_reading(_us(row["_time"]), _us(row["_value"]), row["quantity"])
        for row in self._rows(flags_query(raw, start, stop, tenant)):
            if (obs := of(row)) is not None:
                obs.add_flags(row["_value"].split(","), scored, row["quantity"])
        for row in self._rows(battery_query(raw, start, stop, tenant)):
            if (obs := of(row)) is not None:
                obs.add_battery(_us(row["_time"]), float(row["_value"]))
        return found

    def stored(
        self,
        start: datetime,
        stop: datetime,
        *,
        period: Period,
        scope: Scope | None,
        tenant: str | None,
    ) -> dict[SubjectKey, list[Result]]:
        """Stored indicators of the periods that start in [start, stop)."""
        query = stored_query(
            self._settings.aggregate_bucket, start, stop, period=period, scope=scope, tenant=tenant
        )
        stop_us = to_us(stop)  # 1.8's range also returns points on its stop
        return results_from_rows(row for row in self._rows(query) if _us(row["_time"]) < stop_us)

    @retry(
        retry=retry_if_exception(_worth_retrying),
        wait=wait_exponential(multiplier=0.5, max=30),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )
    def _write_batch(self, results: list[Result]) -> None:
        self._write_api.write(
            bucket=self._settings.aggregate_bucket,
            org=self._settings.org,
            record=[kpi_point(r) for r in results],
        )

    def write(self, results: list[Result]) -> None:
        """Store the indicators; returns once InfluxDB took all of them."""
        for first in range(0, len(results), WRITE_BATCH):
            self._write_batch(results[first : first + WRITE_BATCH])

    def _rows(self, query: str) -> Iterator[dict[str, str]]:
        """The answer's rows as column → text (tables may repeat the header)."""
        header: list[str] | None = None
        for row in self._client.query_api().query_csv(
            query, org=self._settings.org, dialect=PLAIN_CSV
        ):
            if len(row) < 3:
                continue  # the blank line between tables
            if row[1] == "result":
                header = row
                continue
            if header is not None:
                yield dict(zip(header, row, strict=False))

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()


def _us(text: str) -> int:
    """An RFC 3339 time as integer microseconds since the epoch."""
    return to_us(datetime.fromisoformat(text))
