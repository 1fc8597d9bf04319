"""Benchmark of one run of the indicator job: a tenant's day of raw readings to stored indicators.

Writes ``--sensors`` sensors x one day of 5-minute reports (each a value, a battery level and
an RSSI: three readings) for a tenant of its own into the raw bucket, as the stream worker
would, plus a registry of them; then times ``KpiJob.run`` for that day (and its week) as of
the day's last second, ``--repeat`` times, and prints wall and CPU seconds and readings per
CPU second. Dead letters are read from an empty topic of its own. Removes its points at the
end (InfluxDB 1.8: ``DROP SERIES``).

Needs the local services (``make services-start``)::

    .venv/bin/python benchmarks/kpi_job.py --sensors 100 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

from streams.influx_writer import InfluxWriter
from streams.kpis.job import KpiJob
from streams.kpis.store import KpiStore
from urbanpulse.deadletter_reader import LetterScan, read_letters
from urbanpulse.influx_layout import KPI_MEASUREMENT, READING_MEASUREMENT
from urbanpulse.model import Reading
from urbanpulse.registry import SensorInfo
from urbanpulse.settings import KafkaSettings, Settings


def readings(tenant: str, sensors: int, day: datetime) -> list[Reading]:
    """A day of 5-minute reports of every sensor: noise level, battery level, RSSI."""
    out = []
    for s in range(sensors):
        for k in range(288):
            observed = day + timedelta(minutes=5 * k, seconds=s % 300)
            for quantity, unit, value in (
                ("noise_level", "dB", 40 + (k * 7 + s) % 30 / 3),
                ("battery_level", "%", 80.0 - k // 100),
                ("rssi", "dB[mW]", -90.0 - (k + s) % 20),
            ):
                out.append(
                    Reading(
                        tenant=tenant,
                        sensor_id=f"sensor-{s:04d}",
                        quantity=quantity,
                        value=value,
                        unit=unit,
                        observed_at=observed,
                        received_at=observed + timedelta(seconds=1 + s % 9),
                        source_format="json",
                        message_id=f"{s}-{k}",
                    )
                )
    return out


def influxql(settings: Settings, statement: str) -> None:
    """One InfluxQL statement against 1.8's /query (how a benchmark removes its points)."""
    database = settings.influx.raw_bucket.split("/")[0]
    data = urllib.parse.urlencode({"db": database, "q": statement}).encode()
    with urllib.request.urlopen(f"{settings.influx.url}/query", data=data, timeout=120) as answer:
        json.load(answer)


def main() -> None:
    """Write a day, run the job on it, print figures, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sensors", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tenant = f"kpijob-{uuid.uuid4().hex[:8]}"
    settings = Settings(kafka=KafkaSettings(deadletter_topic=f"kpijob-{uuid.uuid4().hex[:8]}"))
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    batch = readings(tenant, args.sensors, day)
    began = time.perf_counter()
    writer = InfluxWriter(settings.influx)
    for at in range(0, len(batch), 5000):
        writer.write(batch[at : at + 5000])
    writer.close()
    print(f"wrote {len(batch)} readings in {time.perf_counter() - began:.1f} s")
    registry = {
        (tenant, f"sensor-{s:04d}"): SensorInfo(
            tenant=tenant, sensor_id=f"sensor-{s:04d}", district=f"d{s % 5}", interval_s=300
        )
        for s in range(args.sensors)
    }

    def letters(since: datetime) -> LetterScan:
        return read_letters(settings.kafka, since, limit=1000, group="kpijob-bench")

    store = KpiStore(settings.influx)
    job = KpiJob(settings, store, letters, lambda: registry)
    walls, cpus = [], []
    try:
        for _ in range(args.repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            summary = job.run(
                day + timedelta(hours=23, minutes=59), since=day.date(), tenant=tenant
            )
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        cpu = statistics.median(cpus)
        print(
            f"one run ({len(summary.days)} day, {len(summary.weeks)} week, {summary.points} "
            f"points) over {len(batch)} readings of {args.sensors} sensors: median of "
            f"{args.repeat} {statistics.median(walls):.2f} s wall, {cpu:.2f} s CPU in this "
            f"process ({len(batch) / cpu:,.0f} readings per CPU second); load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
    finally:
        store.close()
        for measurement in (READING_MEASUREMENT, KPI_MEASUREMENT):
            influxql(settings, f"DROP SERIES FROM {measurement} WHERE tenant = '{tenant}'")


if __name__ == "__main__":
    main()
