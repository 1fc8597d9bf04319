"""Worker CPU µs per reading, and RSS with many sensors' state: no servers, seconds.

``StreamWorker.handle_readings`` (then ``handle_district`` on what it forwarded) on batches of
Kafka records, with only the network replaced: raw and aggregate lines are built as they are
sent to InfluxDB, Kafka sends return confirmed deliveries, snapshots go to a dict. Every
sensor first gets ``--history`` readings ``--interval`` seconds apart, so its windows and
remembered times are those of a sensor in steady state. ``--per-sensor 1``: each reading of
a batch is of another sensor (one reading per MQTT message from many sensors);
``--per-sensor 50``: runs of 50 readings of one sensor (50 readings per message). Figures are
CPU time (``time.process_time``), best and median of ``--repeats``; compare them at similar
load (``uptime``).

``--rss``: feed ``--sensors`` sensors (default 10,000) their history through the worker, take
a snapshot, and print the process's resident memory (``/proc/self/status`` VmRSS) and the
size of the saved states.

    .venv/bin/python -m benchmarks.worker_micro
    .venv/bin/python -m benchmarks.worker_micro --per-sensor 50
    .venv/bin/python -m benchmarks.worker_micro --rss --sensors 10000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.micro import TENANT, make_reading
from streams.app import StreamWorker, tune_gc
from streams.changelog import Row
from streams.points import reading_lines
from urbanpulse.model import Reading
from urbanpulse.registry import RegistryFile
from urbanpulse.settings import Settings, StreamsSettings
from urbanpulse.wire import encode_batch


class _Table:
    """A state table whose changelog keeps the size of each row's last snapshot."""

    def __init__(self) -> None:
        self.saved: dict[bytes, int] = {}

    def pack_rows(self, rows: Iterable[Row]) -> list[Row]:
        """The rows as they come."""
        return list(rows)

    async def put_rows(self, rows: Sequence[Row]) -> list[Awaitable[object]]:
        """Keep each row's size; nothing to wait for."""
        for _, key, value in rows:
            self.saved[key] = 0 if value is None else len(value)
        return []

    def items(self) -> list[tuple[bytes, bytes]]:
        return []

    def forget(self, key: bytes) -> None:
        """Nothing kept."""


class _Topic:
    """A Kafka topic whose sends are confirmed at once; keeps the district records."""

    def __init__(self, keep: bool = False) -> None:
        self.keep = keep
        self.sent: list[tuple[int, bytes, bytes]] = []

    async def send(self, value: bytes, key: bytes | None = None) -> asyncio.Future[None]:
        if self.keep:
            self.sent.append((0, key or b"", value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class _Writer:
    """Builds the line protocol the real writer would send, and no more."""

    def write(self, readings: list[Reading], labels: Any = None) -> None:
        reading_lines(readings, dict(labels or {}))

    def write_lines(self, lines: list[str]) -> None:
        "\n".join(lines)

    def stored_ids(self, query: Any) -> dict[Any, set[int]]:
        return {}


def worker(registry: Path | None) -> StreamWorker:
    """A worker on the fakes, with the registry if given (else none)."""
    path = "" if registry is None else str(registry)
    settings = Settings(streams=StreamsSettings(registry_path=path))
    return StreamWorker(
        settings,
        _Writer(),  # type: ignore[arg-type]
        RegistryFile(path, 3600),
        {
            "deadletter": _Topic(),
            "alerts": _Topic(),
            "observations": _Topic(),
            "district": _Topic(keep=True),
        },
        {"sensor": _Table(), "district": _Table()},
    )


def write_registry(path: Path, sensors: int, districts: int) -> Path | None:
    """Every sensor registered, open, in one of the districts (none: no registry)."""
    if not districts:
        return None
    rows = [f"{TENANT},s-{n:05d},d-{n % districts}" for n in range(sensors)]
    path.write_text("tenant,sensor_id,district\n" + "\n".join(rows) + "\n")
    return path


def records(readings: Iterator[Reading], per_record: int, count: int) -> list[tuple[int, bytes]]:
    """``count`` Kafka records of ``per_record`` readings each."""
    return [(0, encode_batch([next(readings) for _ in range(per_record)])) for _ in range(count)]


def traffic(sensors: int, start: int, per_sensor: int, interval_s: float) -> Iterator[Reading]:
    """Readings from step ``start`` on: runs of ``per_sensor`` per sensor, sensor after sensor."""
    step = start
    while True:
        for sensor in range(sensors):
            for k in range(per_sensor):
                yield make_reading(sensor, step + k, interval_s)
        step += per_sensor


async def feed(w: StreamWorker, batch: list[tuple[int, bytes]]) -> None:
    """One batch through both agents' steps."""
    await w.handle_readings(batch)
    district = w.topics["district"]
    forwarded, district.sent = district.sent, []
    if forwarded:
        await w.handle_district(forwarded)


def history(w: StreamWorker, args: argparse.Namespace, loop: asyncio.AbstractEventLoop) -> None:
    """Every sensor's history, a step of all sensors at a time."""
    for step in range(args.history):
        it = (make_reading(s, step, args.interval) for s in range(args.sensors))
        for start in range(0, args.sensors, args.records * args.per_record):
            chunk = min(args.records * args.per_record, args.sensors - start)
            batch = [(0, encode_batch([next(it) for _ in range(chunk)]))]
            loop.run_until_complete(feed(w, batch))
        if step % 10 == 9:
            loop.run_until_complete(w.snapshot())


def rss_mb() -> float:
    """This process's resident set size, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--history", type=int, default=60, help="readings per sensor first")
    parser.add_argument("--interval", type=float, default=60, help="seconds between readings")
    parser.add_argument("--per-sensor", type=int, default=1)
    parser.add_argument("--per-record", type=int, default=50, help="readings per Kafka record")
    parser.add_argument("--records", type=int, default=10, help="Kafka records per batch")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--districts",
        type=int,
        default=0,
        help="sensors spread over this many districts "
        "of a registry (0: no registry, no district aggregates)",
    )
    parser.add_argument("--rss", action="store_true", help="print RSS after the history")
    parser.add_argument("--registry", default="/tmp/worker-micro-registry.csv")
    args = parser.parse_args()
    if args.rss and args.sensors == 1000:
        args.sensors = 10_000
    loop = asyncio.new_event_loop()
    w = worker(write_registry(Path(args.registry), args.sensors, args.districts))
    tune_gc()  # as `urbanpulse worker` does once it has built its app
    before = rss_mb()
    history(w, args, loop)
    loop.run_until_complete(w.snapshot())
    if args.rss:
        gc.collect()
        sensor_table, district_table = w.tables["sensor"], w.tables["district"]
        saved = sum(sensor_table.saved.values())  # type: ignore[attr-defined]
        biggest = max(district_table.saved.values(), default=0)  # type: ignore[attr-defined]
        print(
            f"RSS {rss_mb():.1f} MB with {args.sensors} sensors' state after {args.history} "
            f"readings each, {args.interval:g} s apart (RSS before the first reading: "
            f"{before:.1f} MB); states saved: sensors {saved / args.sensors:.0f} B each, "
            f"biggest district row {biggest / 1024:.0f} kB"
        )
        return
    readings = traffic(args.sensors, args.history, args.per_sensor, args.interval)
    per_batch = args.records * args.per_record
    figures = []
    for _ in range(args.repeats):
        batches = [records(readings, args.per_record, args.records) for _ in range(args.batches)]
        start = time.process_time()
        for batch in batches:
            loop.run_until_complete(feed(w, batch))
        loop.run_until_complete(w.snapshot())
        figures.append((time.process_time() - start) / (per_batch * args.batches) * 1e6)
    print(
        f"worker {args.per_sensor}/sensor: best {min(figures):.1f} µs/reading, median "
        f"{statistics.median(figures):.1f} ({args.sensors} sensors, history {args.history}, "
        f"{args.districts} districts, batches of {args.records} records x {args.per_record} "
        "readings, snapshots included)"
    )


if __name__ == "__main__":
    main()
