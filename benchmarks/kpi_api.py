"""Benchmark of ``/v1/kpis``: a tenant of ``--sensors`` sensors over ``--days`` days, end to end.

Writes the day indicators of a tenant of its own in the real ``kpi`` layout (the sample days of
``kpi_query.py``: 500 x 30 = 15,000 points by default), starts ``urbanpulse api`` on a free port
as in production (one uvicorn process), and asks ``/v1/kpis?tenant=...&from=...&to=...``
``--repeat`` times in a row for each variant: JSON, JSON with ``Accept-Encoding: gzip`` (what a
browser sends), CSV, and JSON with an admin key. Prints, per variant, the median and the
slowest wall time from sending the request to having read the whole answer, the API process's
CPU time per request (what the machine's load does not change much; the rest is InfluxDB and
waiting), the rows and the bytes. Target (issue 17): the JSON answer in under 300 ms.
Removes its points at the end.

Needs the local InfluxDB (``make services-start``)::

    .venv/bin/python -m benchmarks.kpi_api --sensors 500 --days 30 --repeat 20
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

from influxdb_client.client.write_api import SYNCHRONOUS

from benchmarks.kpi_query import influxql, sample  # the query benchmark's sample days
from benchmarks.stack import free_port
from streams.kpis.points import kpi_point
from urbanpulse.influx import make_client
from urbanpulse.influx_layout import KPI_MEASUREMENT
from urbanpulse.settings import Settings


def start_api(key: str) -> tuple[subprocess.Popen[bytes], str]:
    """``urbanpulse api`` on a free port, no rate limit, ``key`` an API key."""
    port = free_port()
    env = os.environ | {
        "URBANPULSE_API__PORT": str(port),
        "URBANPULSE_LOG_LEVEL": "WARNING",
        "URBANPULSE_API__API_KEYS": json.dumps([key]),
        "URBANPULSE_API__RATE_ANONYMOUS_PER_S": "0",
        "URBANPULSE_API__RATE_KEYED_PER_S": "0",
    }
    process = subprocess.Popen([sys.executable, "-m", "urbanpulse.cli", "api"], env=env)
    for _ in range(150):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the API did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fetch(url: str, headers: dict[str, str]) -> tuple[float, bytes]:
    """Wall seconds to the whole answer, and its bytes (as sent: gzip stays gzip)."""
    began = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as got:
        body = got.read()
        assert got.status == 200, got.status
    return time.perf_counter() - began, body


def main() -> None:
    """Write, start the API, time the variants, print, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sensors", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    settings = Settings()
    tenant = f"kpiapi-{uuid.uuid4().hex[:8]}"
    first = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=args.days + 1
    )
    days = [first + timedelta(days=d) for d in range(args.days)]
    results = [sample(tenant, s, day) for s in range(args.sensors) for day in days]
    with make_client(settings.influx, timeout_ms=120_000) as client:
        writer = client.write_api(write_options=SYNCHRONOUS)
        for at in range(0, len(results), 5000):
            points = [kpi_point(r) for r in results[at : at + 5000]]
            writer.write(bucket=settings.influx.aggregate_bucket, org="-", record=points)
    print(f"wrote {len(results)} points ({args.sensors} sensors x {args.days} days)")
    key = secrets.token_urlsafe(24)
    process, base = start_api(key)
    query = urllib.parse.urlencode(
        {
            "tenant": tenant,
            "from": first.isoformat().replace("+00:00", "Z"),
            "to": (first + timedelta(days=args.days)).isoformat().replace("+00:00", "Z"),
        }
    )
    url = f"{base}/v1/kpis?{query}"
    variants: tuple[tuple[str, str, dict[str, str]], ...] = (
        ("JSON", url, {}),
        ("JSON, gzip", url, {"Accept-Encoding": "gzip"}),
        ("CSV", url + "&format=csv", {}),
        ("JSON, admin key", url, {"X-API-Key": key}),
    )
    try:
        fetch(url, {})  # the first request opens InfluxDB's connection and parses the registry
        for name, target, headers in variants:
            cpu = cpu_seconds(process.pid)
            runs = [fetch(target, headers) for _ in range(args.repeat)]
            api_cpu = (cpu_seconds(process.pid) - cpu) / args.repeat
            seconds = sorted(r[0] for r in runs)
            body = runs[-1][1]
            rows = len(json.loads(body)["data"]) if name in ("JSON", "JSON, admin key") else None
            print(
                f"{name}: median {statistics.median(seconds) * 1000:.0f} ms, slowest "
                f"{seconds[-1] * 1000:.0f} ms of {args.repeat}; API process CPU "
                f"{api_cpu * 1000:.0f} ms per request; {len(body) / 1e6:.2f} MB"
                + (f", {rows} rows" if rows is not None else "")
                + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
            )
    finally:
        process.terminate()
        process.wait(timeout=30)
        influxql(settings, f"DROP SERIES FROM {KPI_MEASUREMENT} WHERE tenant = '{tenant}'")


if __name__ == "__main__":
    main()
