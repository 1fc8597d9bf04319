"""Benchmark of the open-data API: requests/s and p50/p99 latency at a fixed offered rate.

Fills InfluxDB with its own data (tenant ``bench``: N sensors x one day of 5-minute readings
and 1-hour aggregates), starts the API on a free port (or uses ``--url``), then sends requests
at a fixed rate (open loop: a slow answer does not slow the sender down, so queueing shows in
the latency) for each scenario:

* ``latest``: ``/v1/latest`` for the whole tenant (the map endpoint);
* ``sensor-day``: one sensor's day of raw observations;
* ``aggregates-100x1d``: 1-hour aggregates of every sensor for one day.

Requests carry an API key (``X-API-Key``): a started API gets a fresh key and a keyed rate
limit well above the offered rate, so the limiter runs on every request but never refuses one;
with ``--url``, pass the running API's key with ``--api-key``. ``--scenario`` picks scenarios.

Needs the local services (``make services-start``). Prints one line per scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
from influxdb_client import Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

from benchmarks.stack import free_port
from streams.influx_writer import InfluxWriter
from urbanpulse.influx import make_client
from urbanpulse.model import Location, Reading
from urbanpulse.settings import Settings

TENANT = "bench"
DAY_END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
DAY_START = DAY_END - timedelta(days=1)


@dataclass
class Result:
    """Latencies of one scenario."""

    name: str
    sent: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    def line(self) -> str:
        """One printed line of figures."""
        ok = sorted(self.latencies_ms)
        p50 = statistics.median(ok) if ok else float("nan")
        p99 = ok[min(len(ok) - 1, int(len(ok) * 0.99))] if ok else float("nan")
        return (
            f"{self.name:<20} offered {self.sent / self.seconds:6.1f} req/s, "
            f"completed {len(ok) / self.seconds:6.1f} req/s, errors {self.errors}, "
            f"p50 {p50:7.1f} ms, p99 {p99:7.1f} ms  ({len(ok)} requests)"
        )


def fill(settings: Settings, sensors: int) -> None:
    """Write one day of readings and hourly aggregates for ``sensors`` sensors."""
    writer = InfluxWriter(settings.influx)
    steps = int((DAY_END - DAY_START) / timedelta(minutes=5))
    for s in range(sensors):
        sensor_id = f"s-{s:03d}"
        readings = [
            Reading(
                tenant=TENANT,
                sensor_id=sensor_id,
                quantity="pm2_5",
                value=10 + (i % 17),
                unit="ug/m3",
                observed_at=DAY_START + i * timedelta(minutes=5),
                received_at=DAY_START + i * timedelta(minutes=5),
                location=Location(lat=52.0 + s / 1000, lon=5.0 + s / 1000),
                source_format="json",
                message_id=f"{sensor_id}-{i}",
            )
            for i in range(steps)
        ]
        writer.write(readings)
    writer.close()
    client = make_client(settings.influx)
    points = [
        Point("aggregate")
        .tag("tenant", TENANT)
        .tag("scope", "sensor")
        .tag("sensor_id", f"s-{s:03d}")
        .tag("quantity", "pm2_5")
        .tag("window", "1h")
        .field("count", 12)
        .field("mean", 15.0)
        .field("min", 10.0)
        .field("max", 26.0)
        .field("last", 12.0)
        .field("unit", "ug/m3")
        .time(DAY_START + h * timedelta(hours=1), WritePrecision.S)
        for s in range(sensors)
        for h in range(24)
    ]
    client.write_api(write_options=SYNCHRONOUS).write(
        settings.influx.aggregate_bucket, settings.influx.org, points
    )
    client.close()


def start_api(key: str, top_rate: float) -> tuple[subprocess.Popen[bytes], str]:
    """Run ``urbanpulse api`` on a free port, as in production (one uvicorn process)."""
    port = free_port()
    env = os.environ | {
        "URBANPULSE_API__PORT": str(port),
        "URBANPULSE_LOG_LEVEL": "WARNING",
        "URBANPULSE_API__API_KEYS": json.dumps([key]),
        "URBANPULSE_API__RATE_KEYED_PER_S": str(10 * top_rate),
        "URBANPULSE_API__RATE_KEYED_BURST": str(int(10 * top_rate)),
    }
    process = subprocess.Popen([sys.executable, "-m", "urbanpulse.cli", "api"], env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the API did not start")


async def run(name: str, url: str, rate: float, seconds: float, key: str | None) -> Result:
    """Offer ``rate`` requests/s for ``seconds`` and record each latency."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=512)
    headers = {"X-API-Key": key} if key else {}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one() -> None:
            nonlocal errors
            start = time.perf_counter()
            try:
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                        print(f"{name}: HTTP {response.status}", file=sys.stderr)
                        return
            except aiohttp.ClientError as err:
                errors += 1
                print(f"{name}: {err!r}", file=sys.stderr)
                return
            latencies.append(1000 * (time.perf_counter() - start))

        tasks = []
        begin = time.perf_counter()
        count = int(rate * seconds)
        for i in range(count):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return Result(name, count, errors, seconds, latencies)


def main() -> None:
    """Parse arguments, fill data, run every scenario, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="benchmark a running API instead of starting one")
    parser.add_argument("--rate", type=float, default=200, help="offered requests/s (latest)")
    parser.add_argument(
        "--heavy-rate", type=float, default=10, help="offered requests/s for the two range queries"
    )
    parser.add_argument("--seconds", type=float, default=20, help="duration of each scenario")
    parser.add_argument("--sensors", type=int, default=100)
    parser.add_argument("--no-fill", action="store_true", help="reuse data of an earlier run")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=["latest", "sensor-day", "aggregates-100x1d"],
        help="run only this scenario (repeat for several; default: all)",
    )
    parser.add_argument("--api-key", help="X-API-Key for --url (a started API gets its own)")
    args = parser.parse_args()
    settings = Settings()
    if not args.no_fill:
        print(f"writing {args.sensors} sensors x 1 day of data for tenant {TENANT!r} ...")
        fill(settings, args.sensors)
    key = args.api_key if args.url else secrets.token_urlsafe(24)
    top_rate = max(args.rate, args.heavy_rate)
    process, base = (None, args.url) if args.url else start_api(key, top_rate)
    q = urllib.parse.urlencode
    day = {"from": DAY_START.isoformat(), "to": DAY_END.isoformat(), "tenant": TENANT}
    scenarios = [
        ("latest", f"{base}/v1/latest?{q({'tenant': TENANT})}", args.rate),
        (
            "sensor-day",
            f"{base}/v1/sensors/s-001/observations?{q(day | {'limit': 1000})}",
            args.heavy_rate,
        ),
        (
            "aggregates-100x1d",
            f"{base}/v1/aggregates?{q(day | {'window': '1h', 'limit': 10000})}",
            args.heavy_rate,
        ),
    ]
    try:
        for name, url, rate in scenarios:
            if args.scenario and name not in args.scenario:
                continue
            asyncio.run(run(name, url, min(rate, 5), 2, key))  # warm-up, not counted
            print(asyncio.run(run(name, url, rate, args.seconds, key)).line(), flush=True)
    finally:
        if process:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
