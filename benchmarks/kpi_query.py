"""Benchmark of reading the stored indicators the way ``/v1/kpis`` is expected to: one Flux query.

Writes the day indicators of one tenant of ``--sensors`` sensors over ``--days`` days (500 x 30
= 15,000 points by default) in the real ``kpi`` layout (kpis/points.py), with a tenant of its
own, then reads every point's ``summary`` (what ``/v1/kpis`` is expected to read), then every
whole ``indicators`` document, then the numeric fields pivoted into rows, ``--repeat`` times
each, and prints the median time until InfluxDB has answered (server and transfer), to split
the CSV into rows, and to ``json.loads`` every document (an API that splices the stored JSON
into its answer skips that). Removes
its points at the end (InfluxDB 1.8: ``DROP SERIES``).

Needs the local InfluxDB (``make services-start``)::

    .venv/bin/python benchmarks/kpi_query.py --sensors 500 --days 30 --repeat 5
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import statistics
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.dialect import Dialect

from streams.kpis.indicators import Result
from streams.kpis.points import kpi_point
from streams.kpis.sketch import LatencySketch
from urbanpulse.flux import literal
from urbanpulse.influx import make_client
from urbanpulse.influx_layout import (
    KPI_DOCUMENT_FIELD,
    KPI_MEASUREMENT,
    KPI_NUMBER_FIELDS,
    KPI_SUMMARY_FIELD,
)
from urbanpulse.kpi import Indicators
from urbanpulse.settings import Settings

PLAIN_CSV = Dialect(header=True, annotations=[])


def document_query(bucket: str, tenant: str, start: datetime, stop: datetime, field: str) -> str:
    """One JSON field of every sensor-day point of the tenant in [start, stop)."""
    return (
        f"from(bucket: {literal(bucket)})\n"
        f"  |> range(start: {literal(start)}, stop: {literal(stop)})\n"
        f"  |> filter(fn: (r) => r._measurement == {literal(KPI_MEASUREMENT)} and "
        f'r.tenant == {literal(tenant)} and r.period == "day" and r.scope == "sensor" and '
        f"r._field == {literal(field)})\n"
        '  |> keep(columns: ["_time", "subject", "_value"])\n'
    )


def pivot_query(bucket: str, tenant: str, start: datetime, stop: datetime) -> str:
    """The alternative: the numeric fields, pivoted into one row per point."""
    fields = " or ".join(f"r._field == {literal(f)}" for f in KPI_NUMBER_FIELDS)
    return (
        f"from(bucket: {literal(bucket)})\n"
        f"  |> range(start: {literal(start)}, stop: {literal(stop)})\n"
        f"  |> filter(fn: (r) => r._measurement == {literal(KPI_MEASUREMENT)} and "
        f'r.tenant == {literal(tenant)} and r.period == "day" and r.scope == "sensor" and '
        f"({fields}))\n"
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        '  |> drop(columns: ["_start", "_stop", "_measurement"])\n'
    )


def sample(tenant: str, sensor: int, day: datetime) -> Result:
    """A realistic day of one sensor: a few flags, some dead letters, a battery."""
    n = 288 - (sensor * 7 + day.day) % 20
    return Result(
        indicators=Indicators(
            tenant=tenant,
            scope="sensor",
            subject=f"sensor-{sensor:04d}",
            period="day",
            start=day,
            end=day + timedelta(days=1),
            evaluated_at=day + timedelta(days=1, minutes=10),
            complete=True,
            district=f"district-{sensor % 10}",
            sensors_reporting=1,
            interval_s=300.0,
            interval_source="registry",
            expected=288,
            reports=n,
            slots=n,
            readings=3 * n,
            data_readings=2 * n,
            completeness=round(n / 288, 6),
            uptime=round(n / 288, 6),
            latency_p50_s=1.234,
            latency_p95_s=12.5,
            flag_counts={"gap": 2, "stuck": sensor % 4},
            flag_shares={"gap": round(2 / (3 * n), 6), "stuck": round((sensor % 4) / (3 * n), 6)},
            flagged=2 + sensor % 4,
            dead_letters=sensor % 3,
            dead_letter_reasons={"invalid_json": sensor % 3} if sensor % 3 else {},
            first_seen=day - timedelta(days=40),
            last_reading_at=day + timedelta(hours=23, minutes=55),
            since_last_s=300.0,
            battery_pct=float(40 + sensor % 50),
            battery_at=day + timedelta(hours=23, minutes=55),
            score=round(90 + (sensor % 10), 2),
            components={"completeness": round(n / 288, 6), "uptime": round(n / 288, 6)},
        ),
        sketch=LatencySketch(Counter({0: n, 57: n, 127: n})),
    )


def timed(settings: Settings, query: str, parse_documents: bool) -> tuple[float, float, float, int]:
    """Wall seconds to InfluxDB's whole answer, then this process's CPU seconds to split the
    CSV into rows and to ``json.loads`` the documents (CPU time: the machine may be shared);
    and the row count."""
    with make_client(settings.influx, timeout_ms=120_000) as client:
        began = time.perf_counter()
        body = client.query_api().query_raw(query, dialect=PLAIN_CSV).data.decode()
        answered = time.perf_counter()
        cpu = time.process_time()
        lines = [r for r in csv.reader(io.StringIO(body)) if len(r) > 2]
        header = next(r for r in lines if r[1] == "result")
        rows = [r for r in lines if r[1] != "result"]
        split = time.process_time()
        if parse_documents:
            column = header.index("_value")
            for row in rows:
                json.loads(row[column])
        parsed = time.process_time()
    return answered - began, split - cpu, parsed - split, len(rows)


def influxql(settings: Settings, statement: str) -> None:
    """One InfluxQL statement against 1.8's /query (how a benchmark removes its points)."""
    database = settings.influx.aggregate_bucket.split("/")[0]
    data = urllib.parse.urlencode({"db": database, "q": statement}).encode()
    with urllib.request.urlopen(f"{settings.influx.url}/query", data=data, timeout=60) as answer:
        json.load(answer)


def main() -> None:
    """Write, read back, print figures, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sensors", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    settings = Settings()
    tenant = f"kpibench-{uuid.uuid4().hex[:8]}"
    first = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=args.days + 1
    )
    days = [first + timedelta(days=d) for d in range(args.days)]
    results = [sample(tenant, s, day) for s in range(args.sensors) for day in days]
    began = time.perf_counter()
    with make_client(settings.influx, timeout_ms=120_000) as client:
        writer = client.write_api(write_options=SYNCHRONOUS)
        for at in range(0, len(results), 5000):
            points = [kpi_point(r) for r in results[at : at + 5000]]
            writer.write(bucket=settings.influx.aggregate_bucket, org="-", record=points)
    whole, summary = results[0].indicators.to_json(), results[0].indicators.summary_json()
    print(
        f"wrote {len(results)} points ({args.sensors} sensors x {args.days} days) in "
        f"{time.perf_counter() - began:.1f} s; one document {len(whole)} bytes, its summary "
        f"{len(summary)}"
    )
    stop = first + timedelta(days=args.days)
    bucket = settings.influx.aggregate_bucket
    try:
        for name, query, parse in (
            (
                "summaries (the /v1/kpis query)",
                document_query(bucket, tenant, first, stop, KPI_SUMMARY_FIELD),
                True,
            ),
            (
                "whole documents",
                document_query(bucket, tenant, first, stop, KPI_DOCUMENT_FIELD),
                True,
            ),
            ("numeric fields, pivoted", pivot_query(bucket, tenant, first, stop), False),
        ):
            runs = [timed(settings, query, parse) for _ in range(args.repeat)]
            answer = statistics.median(r[0] for r in runs)
            split = statistics.median(r[1] for r in runs)
            parsed = statistics.median(r[2] for r in runs)
            print(
                f"{name}: {runs[0][3]} rows; median of {args.repeat}: InfluxDB answered in "
                f"{answer * 1000:.0f} ms (wall), CSV split {split * 1000:.0f} ms (CPU)"
                + (f", json.loads {parsed * 1000:.0f} ms (CPU)" if parse else "")
                + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
            )
    finally:
        influxql(settings, f"DROP SERIES FROM {KPI_MEASUREMENT} WHERE tenant = '{tenant}'")


if __name__ == "__main__":
    main()
