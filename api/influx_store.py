"""Reads observations, sensors, aggregates and alerts from InfluxDB (the API's one data adapter)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from influxdb_client.domain.dialect import Dialect

from api.filters import (
    WINDOWS,
    AggregateFilter,
    AlertFilter,
    DayCountFilter,
    ObservationFilter,
)
from api.flux import (
    FluxQuery,
    aggregates_query,
    alerts_query,
    daily_counts_query,
    observations_query,
    sensors_query,
)
from api.formats import Aggregate, Alert, Observation
from api.kpi_filters import HourlyFilter, KpiFilter, KpiRow
from api.kpi_flux import hourly_query, kpi_query
from api.sensors import Sensor, sensors_from_rows
from api.store import DayCountRow
from urbanpulse.experiments import HourlyMean
from urbanpulse.influx import make_client
from urbanpulse.settings import InfluxSettings


class FluxRunner:
    """Sends Flux queries to InfluxDB, their parameters as the server understands them:
    ``extern`` parameters for 2.x, literals at their place of use for 1.8."""

    def __init__(self, settings: InfluxSettings) -> None:
        self._settings = settings
        self._client = make_client(settings)

    def rows(self, query: FluxQuery) -> Iterator[dict[str, Any]]:
        """The answer's rows, table after table (the whole answer is read first)."""
        for table in self._client.query_api().query(**self._request(query)):
            for record in table.records:
                yield record.values

    def stream(self, query: FluxQuery) -> Iterator[dict[str, Any]]:
        """The answer's rows, read lazily as InfluxDB sends them (for big answers)."""
        for record in self._client.query_api().query_stream(**self._request(query)):
            yield record.values

    def _request(self, query: FluxQuery) -> dict[str, Any]:
        """The query's arguments to the client, its parameters as this server takes them."""
        if self._settings.flux_params == "extern":
            return {"query": query.text, "org": self._settings.org, "params": query.params}
        return {"query": query.inline(), "org": self._settings.org}

    def ping(self) -> bool:
        """True when InfluxDB answers."""
        return bool(self._client.ping())

    def csv_lists(self, query: FluxQuery) -> Iterator[tuple[dict[str, int], list[str]]]:
        """The answer's rows as lists of text with their table's column positions, read from
        plain CSV without the client's record objects (several times faster for answers of
        thousands of rows: the indicators of a tenant's month are 15,000, docs/kpis.md)."""
        answer = self._client.query_api().query_raw(**self._request(query), dialect=PLAIN_CSV)
        header: dict[str, int] = {}
        for row in csv.reader(io.StringIO(answer.data.decode())):
            if len(row) < 3:
                continue  # the blank line between tables
            if row[1] == "result":
                header = {name: i for i, name in enumerate(row)}  # each table repeats it
            elif header:
                yield header, row

    def csv_rows(self, query: FluxQuery) -> Iterator[dict[str, str]]:
        """The answer's rows as column → text (:meth:`csv_lists`, one dict per row)."""
        for header, row in self.csv_lists(query):
            yield {name: row[i] for name, i in header.items() if i < len(row)}

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()


PLAIN_CSV = Dialect(header=True, annotations=[])
KPI_COLUMNS = ("tenant", "subject", "_time", "_value")


class InfluxStore:
    """Runs the API's Flux queries: the :class:`api.store.Store` of a deployment."""

    def __init__(self, settings: InfluxSettings) -> None:
        self._settings = settings
        self._flux = FluxRunner(settings)

    def observations(self, flt: ObservationFilter) -> list[Observation]:
        """Raw readings matching the filter, in keyset order."""
        return [_observation(row) for row in self._rows(observations_query(self._bucket, flt))]

    def sensors(
        self, since: datetime, tenant: str | None, allowed: tuple[str, ...] = ()
    ) -> list[Sensor]:
        """Every sensor that reported since ``since`` (only ``allowed`` quantities, if given)."""
        query = sensors_query(self._bucket, since, tenant, allowed)
        return sensors_from_rows(self._rows(query))

    def aggregates(self, flt: AggregateFilter) -> list[Aggregate]:
        """Window aggregates matching the filter, in keyset order."""
        query = aggregates_query(self._settings.aggregate_bucket, flt)
        return [_aggregate(row, flt.window) for row in self._rows(query)]

    def alerts(self, flt: AlertFilter) -> list[Alert]:
        """Alert episodes matching the filter, in keyset order."""
        query = alerts_query(self._settings.aggregate_bucket, flt)
        return [_alert(row) for row in self._rows(query)]

    def observation_stream(self, flt: ObservationFilter) -> Iterator[Observation]:
        """Raw readings matching the filter, read lazily (for bulk files of a whole day)."""
        for row in self._flux.stream(observations_query(self._bucket, flt)):
            yield _observation(row)

    def daily_counts(self, flt: DayCountFilter) -> list[DayCountRow]:
        """(tenant, quantity, UTC day start, readings) for every day with readings."""
        query = daily_counts_query(self._bucket, flt)
        return [
            (row["tenant"], row["quantity"], row["_start"], int(row["_value"]))
            for row in self._rows(query)
            # InfluxDB 1.8 adds empty-width windows that count a reading twice: not a day.
            if row.get("_value") and row["_stop"] > row["_start"]
        ]

    def ping(self) -> bool:
        """True when InfluxDB answers."""
        return self._flux.ping()

    def kpis(self, flt: KpiFilter) -> list[KpiRow]:
        """Stored indicator points (one JSON field each, unparsed), in no particular order."""
        query = kpi_query(self._settings.aggregate_bucket, flt)
        scope, period = flt.scope, flt.period
        rows = []
        seen: dict[str, int] = {}
        at: tuple[int, ...] = ()
        # Column positions from each table's header, not a dict per row: 15,000 rows a month.
        for header, row in self._flux.csv_lists(query):
            if header is not seen:
                seen, at = header, tuple(header[c] for c in KPI_COLUMNS)
            rows.append(KpiRow(row[at[0]], scope, row[at[1]], period, row[at[2]], row[at[3]]))
        return rows

    def hourly_means(self, flt: HourlyFilter) -> list[HourlyMean]:
        """Hourly means and reading counts of open sensors (experiments), in no order."""
        fields: dict[tuple[str, str], dict[str, str]] = {}
        for row in self._flux.csv_rows(hourly_query(self._settings.aggregate_bucket, flt)):
            fields.setdefault((row["sensor_id"], row["_time"]), {})[row["_field"]] = row["_value"]
        return [
            HourlyMean(
                sensor_id=sensor,
                start=datetime.fromisoformat(time),
                mean=float(values["mean"]),
                count=int(float(values.get("count") or 0)),
            )
            for (sensor, time), values in fields.items()
            if "mean" in values
        ]

    def close(self) -> None:
        """Release the HTTP connections."""
        self._flux.close()

    @property
    def _bucket(self) -> str:
        return self._settings.raw_bucket

    def _rows(self, query: FluxQuery) -> Iterator[dict[str, Any]]:
        return self._flux.rows(query)


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


def _aggregate(row: dict[str, Any], window: str) -> Aggregate:
    return Aggregate(
        window_start=row["_time"],
        window_end=row["_time"] + WINDOWS[window],
        window=window,
        tenant=row["tenant"],
        scope=row["scope"],
        sensor_id=row.get("sensor_id"),
        district=row.get("district"),
        quantity=row["quantity"],
        count=int(row.get("count") or 0),
        mean=row.get("mean"),
        min=row.get("min"),
        max=row.get("max"),
        last=row.get("last"),
        unit=row.get("unit") or "",
    )


def _alert(row: dict[str, Any]) -> Alert:
    ended = row.get("ended_at") or None
    return Alert(
        started_at=row["_time"],
        ended_at=ended,
        state=row.get("state") or "open",
        tenant=row["tenant"],
        sensor_id=row["sensor_id"],
        rule=row["rule"],
        quantity=row["quantity"],
        value=row.get("value"),
        message=row.get("message") or "",
    )
