"""Benchmark of the city map's data request, ``/web/map.json``, for a town of N sensors.

The map page asks for its data once (sensors, latest readings, districts, scales); the target
is < 100 ms for a town of 500 sensors. This script writes such a town into InfluxDB (tenant
``webbench``: N sensors of five kinds in six districts, their latest readings, some stale and
some flagged, tagged with districts as the worker's registry enrichment does), then measures:

* ``uncached``: an API started with ``URBANPULSE_API__SENSORS_CACHE_S=0``, so every request
  runs the InfluxDB query and builds the document: sequential requests, one at a time;
* ``cached``: an API with the default settings, at a fixed offered rate (open loop, as
  ``benchmarks/api_bench.py``): what visitors get, a refresh in the background every
  ``api.sensors_cache_s``.

Needs the local services (``make services-start``). Prints one line per scenario:

    .venv/bin/python benchmarks/web_bench.py [--sensors 500] [--rate 50] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import aiohttp

from benchmarks.stack import free_port
from streams.influx_writer import InfluxWriter
from streams.points import SensorLabels
from urbanpulse.model import Location, Reading
from urbanpulse.settings import Settings

TENANT = "webbench"
DISTRICTS = ("centrum", "noord", "oost", "zuid", "west", "haven")
KINDS = (  # (prefix, ((quantity, unit, base value), ...))
    ("air", (("pm2_5", "ug/m3", 9.0), ("pm10", "ug/m3", 18.0), ("temperature", "Cel", 11.0))),
    ("noise", (("noise_level", "dB", 52.0),)),
    ("weather", (("temperature", "Cel", 10.0), ("relative_humidity", "%", 70.0))),
    ("parking", (("occupancy", "1", 1.0),)),
    ("waste", (("fill_level", "%", 40.0),)),
)


def town(sensors: int, now: datetime) -> tuple[list[Reading], dict[bytes, SensorLabels]]:
    """The latest readings of ``sensors`` sensors: 5 % stale (3 h old), 3 % flagged."""
    readings: list[Reading] = []
    labels: dict[bytes, SensorLabels] = {}
    for i in range(sensors):
        prefix, quantities = KINDS[i % len(KINDS)]
        sensor_id = f"{prefix}-{i:04d}"
        district = DISTRICTS[i % len(DISTRICTS)]
        k = DISTRICTS.index(district)
        where = Location(
            lat=52.05 + 0.02 * (k // 3) + (i % 37) / 3000,
            lon=5.08 + 0.03 * (k % 3) + (i % 29) / 2000,
        )
        age = timedelta(hours=3) if i % 20 == 0 else timedelta(minutes=2)
        for n, (quantity, unit, base) in enumerate(quantities):
            reading = Reading(
                tenant=TENANT,
                sensor_id=sensor_id,
                quantity=quantity,
                value=base if quantity == "occupancy" else base + (i * 7 + n) % 40,
                unit=unit,
                observed_at=now - age,
                received_at=now - age,
                location=where,
                source_format="json",
                message_id=f"{sensor_id}-{quantity}",
                quality_flags=("spike",) if i % 33 == 0 else (),
            )
            readings.append(reading)
            labels[reading.key] = SensorLabels(district=district)
    return readings, labels


def fill(settings: Settings, sensors: int) -> None:
    """Write the town's latest readings into the raw bucket."""
    readings, labels = town(sensors, datetime.now(UTC).replace(microsecond=0))
    writer = InfluxWriter(settings.influx)
    for start in range(0, len(readings), 5000):
        writer.write(readings[start : start + 5000], labels)
    writer.close()


def start_api(key: str, extra: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """Run ``urbanpulse api`` on a free port (one uvicorn process, as in production)."""
    port = free_port()
    env = (
        os.environ
        | {
            "URBANPULSE_API__PORT": str(port),
            "URBANPULSE_LOG_LEVEL": "WARNING",
            "URBANPULSE_API__API_KEYS": json.dumps([key]),
            "URBANPULSE_API__RATE_KEYED_PER_S": "10000",
            "URBANPULSE_API__RATE_KEYED_BURST": "10000",
        }
        | extra
    )
    process = subprocess.Popen([sys.executable, "-m", "urbanpulse.cli", "api"], env=env)
    for _ in range(150):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the API did not start")


def summary(name: str, latencies: list[float], errors: int, note: str) -> str:
    """One printed line of figures."""
    ok = sorted(latencies)
    p50 = statistics.median(ok) if ok else float("nan")
    p99 = ok[min(len(ok) - 1, int(len(ok) * 0.99))] if ok else float("nan")
    worst = ok[-1] if ok else float("nan")
    return (
        f"{name:<9} p50 {p50:6.1f} ms, p99 {p99:6.1f} ms, max {worst:6.1f} ms, "
        f"errors {errors}  ({len(ok)} requests; {note})"
    )


def sequential(url: str, key: str, count: int) -> tuple[list[float], int, int, int]:
    """``count`` requests one after another: latencies, errors, body bytes, gzip bytes."""
    latencies: list[float] = []
    errors = plain = packed = 0
    for _ in range(count):
        request = urllib.request.Request(url, headers={"X-API-Key": key, "Accept-Encoding": "gzip"})
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read()
        except OSError as err:
            errors += 1
            print(f"uncached: {err!r}", file=sys.stderr)
            continue
        latencies.append(1000 * (time.perf_counter() - start))
        packed = len(body)
        plain = len(gzip.decompress(body)) if body[:2] == b"\x1f\x8b" else len(body)
    return latencies, errors, plain, packed


async def open_loop(url: str, key: str, rate: float, seconds: float) -> tuple[list[float], int]:
    """Offer ``rate`` requests/s for ``seconds``; a slow answer does not slow the sender."""
    latencies: list[float] = []
    errors = 0
    headers = {"X-API-Key": key, "Accept-Encoding": "gzip"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one() -> None:
            nonlocal errors
            start = time.perf_counter()
            try:
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                        return
            except aiohttp.ClientError:
                errors += 1
                return
            latencies.append(1000 * (time.perf_counter() - start))

        tasks = []
        begin = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return latencies, errors


def main() -> None:
    """Fill the town, run both scenarios, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sensors", type=int, default=500)
    parser.add_argument("--requests", type=int, default=30, help="uncached: sequential requests")
    parser.add_argument("--rate", type=float, default=50, help="cached: offered requests/s")
    parser.add_argument("--seconds", type=float, default=20, help="cached: duration")
    parser.add_argument("--no-fill", action="store_true", help="reuse the data of an earlier run")
    args = parser.parse_args()
    settings = Settings()
    if not args.no_fill:
        print(f"writing the latest readings of {args.sensors} sensors for tenant {TENANT!r} ...")
        fill(settings, args.sensors)
    key = secrets.token_urlsafe(24)
    path = f"/web/map.json?tenant={TENANT}"

    process, base = start_api(key, {"URBANPULSE_API__SENSORS_CACHE_S": "0"})
    try:
        sequential(base + path, key, 2)  # warm-up: imports, connections
        latencies, errors, plain, packed = sequential(base + path, key, args.requests)
        doc = json.loads(urllib.request.urlopen(base + path, timeout=30).read())
    finally:
        process.terminate()
        process.wait()
    sensors = len(doc["sensors"])
    note = f"{sensors} sensors, {plain / 1000:.0f} kB JSON, {packed / 1000:.0f} kB gzipped"
    print(summary("uncached", latencies, errors, note), flush=True)

    process, base = start_api(key, {})
    try:
        asyncio.run(open_loop(base + path, key, 5, 2))  # warm-up, not counted
        latencies, errors = asyncio.run(open_loop(base + path, key, args.rate, args.seconds))
    finally:
        process.terminate()
        process.wait()
    print(summary("cached", latencies, errors, f"{args.rate:g} req/s offered"), flush=True)


if __name__ == "__main__":
    main()
