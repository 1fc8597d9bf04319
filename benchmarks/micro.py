"""Micro-benchmarks of the hot path, with budgets: no servers, a few seconds.

Each figure is CPU time per reading of one step of the hot path, run in this process on
prepared inputs, as the best of ``--repeats`` repeats (the median is printed beside it). CPU
time (``time.process_time``: every thread of this process) rather than elapsed time, so the
time the process waits for a core on a busy shared machine does not count; contention for
caches still does, so compare figures taken at similar load (``uptime``) and machine speed
(the calibration printed first, ``benchmarks.calibration``). A figure over its
budget (times ``--budget-factor``) makes the exit status 1, so a regression shows before the
end-to-end run (``benchmarks/throughput.py``).

Figures:

* ``decode 1/msg``, ``decode 50/msg``, ``decode 2000/msg``: ``ingest.routing.decode_message``
  of native-JSON messages (the peer kit's shape: epoch-second time, no id) holding 1, 50 or
  2,000 readings: routing, parsing, validation, message ids, the personal-data filter.
  ``encode`` rows: ``Reading.to_bytes`` of the decoded readings (the Kafka values), not
  budgeted.
* ``worker 1/sensor``, ``worker 50/sensor``: ``StreamWorker.handle_readings`` on batches of
  ``--batch`` readings in Kafka records of ``--per-record`` readings (records as the ingest
  writes them: ``urbanpulse.wire.encode_batch``), with only the network replaced:
  the raw and aggregate line protocol is built as it is sent to InfluxDB, Kafka sends return
  already-confirmed futures, and the state table is a dict (snapshots: ``state save``).
  Every sensor (``--sensors``) starts with ``--history`` readings of history ``--interval``
  seconds apart (default 720 at 10 s: the 2 h dedupe horizon full). ``1/sensor``: each
  reading of a batch is of another sensor (the traffic of one reading per MQTT message from
  many sensors), and each sensor reads once between two snapshots, so every reading also
  costs its sensor three aggregate lines and a state encoding (the case of a city's sensors,
  which report every few minutes); ``50/sensor``: a batch holds runs of 50 readings of one
  sensor (50 readings per message).
* ``worker stages``: the same batches (1/sensor) through the steps of ``handle_readings``
  one by one, to show where the time goes: parsing the Kafka records,
  ``streams.pipeline.process_sensor`` on the live states, encoding the states a snapshot
  saves (once per batch here; the worker does it every ``snapshot_s``), building the raw and
  aggregate line protocol, encoding the observations. Not budgeted.

Budgets follow the targets of issue 14 (docs/performance.md): at 1 reading per message the
whole machine may spend 150 µs per reading, of which decoding gets 10 and the worker 20; at
50 per message it may spend 30, of which decoding gets 5 and the worker 10.

    .venv/bin/python -m benchmarks.micro
    .venv/bin/python -m benchmarks.micro --budget-factor 2 --json   # a slow machine
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.calibration import calibration_ms
from benchmarks.figures import Timing, over_budget
from ingest.routing import decode_message
from streams.app import StreamWorker, TableState, tune_gc
from streams.batches import parse_records
from streams.changelog import Row
from streams.pipeline import Outcome, StreamsConfig, process_sensor, snapshot_aggregates
from streams.points import aggregate_line, reading_lines
from streams.state import SensorState, decode_sensor, encode_sensor
from urbanpulse.model import Reading
from urbanpulse.registry import RegistryFile
from urbanpulse.settings import Settings
from urbanpulse.wire import encode_batch

T0 = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
MAX_PAYLOAD = 256 * 1024
TENANT = "bench"


@dataclass(frozen=True)
class Figure:
    """One measured figure and its budget (µs per reading)."""

    name: str
    what: str
    timing: Timing
    budget: float | None = None

    def as_dict(self, factor: float) -> dict[str, Any]:
        """The figure for ``--json``."""
        return {
            "name": self.name,
            "what": self.what,
            "best_us": round(self.timing.best, 2),
            "median_us": round(self.timing.median, 2),
            "budget_us": self.budget,
            "over_budget": over_budget(self.timing.best, self.budget, factor),
        }


# -- decode -------------------------------------------------------------------------------


def native_messages(per_message: int, messages: int) -> list[tuple[str, bytes]]:
    """Native-JSON messages as the peer kit makes them: one sensor each, readings 1 s apart."""
    out = []
    for m in range(messages):
        items = [
            {
                "time": round(T0.timestamp() + r + m * 1e-4, 4),
                "quantity": "temperature",
                "value": round(15 + (r * 7 + m) % 100 / 10, 2),
                "unit": "Cel",
            }
            for r in range(per_message)
        ]
        body = items[0] if per_message == 1 else {"readings": items}
        topic = f"urbanpulse/{TENANT}/s-{m:05d}/json"
        out.append((topic, json.dumps(body, separators=(",", ":")).encode()))
    return out


def time_decode(per_message: int, repeats: int) -> tuple[Timing, Timing]:
    """µs per reading of decoding, and of encoding the decoded readings for Kafka."""
    count = max(1, 2000 // per_message)
    messages = native_messages(per_message, count)
    received = datetime.now(UTC)
    for topic, payload in messages:  # warm-up: first calls build pydantic's validators
        decode_message(topic, payload, received, MAX_PAYLOAD)
    decode_us, encode_us = [], []
    for _ in range(repeats):
        decoded = []
        start = time.process_time()
        for topic, payload in messages:
            decoded.append(decode_message(topic, payload, received, MAX_PAYLOAD))
        middle = time.process_time()
        for result in decoded:
            for reading in result.readings:
                reading.to_bytes()
        end = time.process_time()
        readings = sum(len(d.readings) for d in decoded)
        if readings != per_message * count:
            raise RuntimeError(f"decoded {readings} of {per_message * count} readings")
        decode_us.append((middle - start) / readings * 1e6)
        encode_us.append((end - middle) / readings * 1e6)
    return Timing(tuple(decode_us)), Timing(tuple(encode_us))


# -- worker -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    """Who sends what: sensors, their history, and how readings are grouped."""

    sensors: int
    history: int
    interval_s: float
    per_sensor: int  # consecutive readings of one sensor in the Kafka order
    batch: int
    per_record: int = 50  # readings per Kafka record (the ingest writes a batch per record)


def sensor_id(n: int) -> str:
    """The id of sensor number ``n``."""
    return f"s-{n:05d}"


def make_reading(sensor: int, step: int, interval_s: float) -> Reading:
    """Reading ``step`` of a sensor: values that drift without spikes or stuck runs."""
    observed = T0 + timedelta(seconds=step * interval_s)
    return Reading(
        tenant=TENANT,
        sensor_id=sensor_id(sensor),
        quantity="temperature",
        value=round(15 + (step * 7 + sensor) % 100 / 10, 2),
        unit="Cel",
        observed_at=observed,
        received_at=observed + timedelta(seconds=1),
        source_format="json",
        message_id=f"{sensor_id(sensor)}-{step}",
    )


def initial_states(traffic: Traffic, config: StreamsConfig) -> dict[bytes, bytes]:
    """Each sensor's state after its history, saved as the worker's table holds it."""
    history = [make_reading(0, k, traffic.interval_s) for k in range(traffic.history)]
    state, _ = process_sensor(SensorState(), history, None, False, config)
    snapshot_aggregates(state, config)  # written by the snapshots during the history
    saved = encode_sensor(state)
    states = {}
    for n in range(traffic.sensors):
        copy = decode_sensor(saved)
        copy.sensor_id = sensor_id(n)
        states[f"{TENANT}/{sensor_id(n)}".encode()] = encode_sensor(copy)
    return states


def topic_readings(traffic: Traffic) -> Iterator[Reading]:
    """The readings after the history, in topic order: runs of ``per_sensor`` per sensor."""
    step = traffic.history
    while True:
        for sensor in range(traffic.sensors):
            for k in range(traffic.per_sensor):
                yield make_reading(sensor, step + k, traffic.interval_s)
        step += traffic.per_sensor


def batches(traffic: Traffic, count: int) -> list[list[bytes]]:
    """The next ``count`` batches of ``traffic.batch`` readings, as the Kafka values of records
    of ``traffic.per_record`` readings each (``urbanpulse.wire.encode_batch``, as the ingest
    writes them)."""
    readings = topic_readings(traffic)
    out = []
    for _ in range(count):
        batch = [next(readings) for _ in range(traffic.batch)]
        step = traffic.per_record
        out.append([encode_batch(batch[k : k + step]) for k in range(0, len(batch), step)])
    return out


class _Table:
    """The part of a Faust table ``TableState`` uses: the rows recovered."""

    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.data = data


class _NoChangelog:
    """A changelog that keeps nothing and has nothing to wait for."""

    def pack(self, rows: Iterable[Row]) -> list[Row]:
        """The rows as they come."""
        return list(rows)

    async def send(self, rows: Sequence[Row]) -> list[Awaitable[object]]:
        """Drop the rows."""
        return []


class _Topic:
    """A Kafka topic whose sends are confirmed at once."""

    async def send(self, value: bytes, key: bytes | None = None) -> asyncio.Future[None]:
        """Return an already-confirmed delivery."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class _LineProtocolWriter:
    """Builds the line protocol the InfluxDB writer sends, and no more."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, readings: list[Reading], labels: dict[bytes, Any] | None = None) -> None:
        """Serialise the raw points."""
        self.lines += len(reading_lines(readings, labels or {}))

    def write_lines(self, lines: list[str]) -> None:
        """The aggregate and alert lines (built by the worker)."""
        self.lines += len("\n".join(lines).splitlines())

    def stored_ids(self, query: Any) -> dict[Any, set[int]]:
        """No redelivered reading repeats a stored one here."""
        return {}


def offline_worker(traffic: Traffic) -> StreamWorker:
    """A ``StreamWorker`` with the network left out (see the module's docstring), its
    sensors' states after their history, the garbage collector tuned as in production."""
    settings = Settings()
    config = StreamsConfig.from_settings(settings.streams)
    topics: dict[str, Any] = {
        n: _Topic() for n in ("deadletter", "alerts", "observations", "district")
    }
    tables = {
        "sensor": TableState(_Table(initial_states(traffic, config)), _NoChangelog()),
        "district": TableState(_Table({}), _NoChangelog()),
    }
    worker = StreamWorker(settings, _LineProtocolWriter(), RegistryFile("", 10), topics, tables)  # type: ignore[arg-type]
    tune_gc()  # as `urbanpulse worker` does once it has built its app
    return worker


def time_worker(traffic: Traffic, repeats: int, per_repeat: int) -> Timing:
    """µs per reading of ``StreamWorker.handle_readings`` with the network left out."""
    worker = offline_worker(traffic)
    warm_up, *work = batches(traffic, 1 + repeats * per_repeat)

    async def run() -> list[float]:
        await worker.handle_readings([(0, v) for v in warm_up])  # thread pool, caches
        samples = []
        for r in range(repeats):
            elapsed, readings = 0.0, 0
            for values in work[r * per_repeat : (r + 1) * per_repeat]:
                start = time.process_time()
                stored = await worker.handle_readings([(0, v) for v in values])
                elapsed += time.process_time() - start
                readings += traffic.batch
                if stored != traffic.batch:
                    raise RuntimeError(f"the worker stored {stored} of {traffic.batch} readings")
            start = time.process_time()
            await worker.snapshot()  # the states changed are saved once per repeat
            elapsed += time.process_time() - start
            samples.append(elapsed / readings * 1e6)
        return samples

    return Timing(tuple(asyncio.run(run())))


@dataclass
class Stages:
    """Seconds spent in each step of the worker's batch (see ``time_stages``)."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Add the time the block takes to ``name``."""
        start = time.process_time()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.process_time() - start


STAGES = {
    "parse": "streams.batches.parse_records of the Kafka records",
    "process_sensor": "streams.pipeline.process_sensor on the live states (in place)",
    "state save": "encode_sensor per sensor in the batch (a snapshot's work, once per batch)",
    "points": "raw and aggregate line protocol",
    "encode": "encode_batch of the stored readings (the observations topic)",
}


def time_stages(traffic: Traffic, repeats: int, per_repeat: int) -> dict[str, Timing]:
    """µs per reading of each step of a batch, the steps run one by one as the worker does."""
    config = StreamsConfig.from_settings(Settings().streams)
    table = {key: decode_sensor(saved) for key, saved in initial_states(traffic, config).items()}
    work = batches(traffic, 1 + repeats * per_repeat)
    samples: dict[str, list[float]] = {name: [] for name in STAGES}
    for r in range(-1, repeats):  # -1: a warm-up batch, not counted
        stages, readings = Stages(), 0
        for values in work[1 + r * per_repeat : 1 + (r + 1) * per_repeat] if r >= 0 else work[:1]:
            readings += traffic.batch
            with stages.timed("parse"):
                parsed = parse_records([(0, v) for v in values], "readings")
            groups: dict[bytes, list[Reading]] = {}
            for reading in parsed.readings:
                groups.setdefault(reading.key, []).append(reading)
            outcome = Outcome()
            for key, group in groups.items():
                with stages.timed("process_sensor"):
                    process_sensor(table[key], group, None, False, config, outcome)
                with stages.timed("state save"):
                    encode_sensor(table[key])
            with stages.timed("points"):
                _lines(outcome, [table[key] for key in groups], config)
            with stages.timed("encode"):
                encode_batch(outcome.stored)
        for name in STAGES:
            if r >= 0:
                samples[name].append(stages.seconds.get(name, 0.0) / readings * 1e6)
    return {name: Timing(tuple(values)) for name, values in samples.items()}


def _lines(outcome: Outcome, states: list[SensorState], config: StreamsConfig) -> list[str]:
    # The raw lines of every batch and the aggregate lines of its windows; the worker writes
    # aggregates once per snapshot (newest per window), so this stage is an upper bound.
    updates = [u for state in states for u in snapshot_aggregates(state, config)]
    return reading_lines(outcome.stored, {}) + [aggregate_line(u) for u in updates]


# -- the run ------------------------------------------------------------------------------

BUDGETS = {
    "decode 1/msg": 10.0,
    "decode 50/msg": 5.0,
    "decode 2000/msg": 5.0,
    "worker 1/sensor": 20.0,
    "worker 50/sensor": 10.0,
}


def measure(args: argparse.Namespace) -> tuple[list[Figure], int]:
    """Every figure, in the order printed; and the size of one sensor's state in bytes."""
    figures = []
    for per in (1, 50, 2000):
        decode, encode = time_decode(per, args.repeats)
        what = f"decode_message, {per} reading(s) per native-JSON message"
        figures.append(Figure(f"decode {per}/msg", what, decode, BUDGETS[f"decode {per}/msg"]))
        figures.append(Figure(f"encode {per}/msg", "Reading.to_bytes (Kafka value)", encode))
    base = {
        "sensors": args.sensors,
        "history": args.history,
        "interval_s": args.interval,
        "batch": args.batch,
        "per_record": args.per_record,
    }
    one = Traffic(per_sensor=1, **base)
    fifty = Traffic(per_sensor=50, **base)
    per_repeat = max(1, args.readings // args.batch)
    for name, traffic in (("worker 1/sensor", one), ("worker 50/sensor", fifty)):
        what = f"StreamWorker.handle_readings, {traffic.per_sensor} reading(s) per sensor in a row"
        timing = time_worker(traffic, args.repeats, per_repeat)
        figures.append(Figure(name, what, timing, BUDGETS[name]))
    for name, timing in time_stages(one, args.repeats, per_repeat).items():
        figures.append(Figure(f"  stage {name}", STAGES[name], timing))
    config = StreamsConfig.from_settings(Settings().streams)
    state_bytes = len(
        initial_states(replace(one, sensors=1), config)[f"{TENANT}/{sensor_id(0)}".encode()]
    )
    return figures, state_bytes


def print_table(
    figures: list[Figure],
    factor: float,
    state_bytes: int,
    args: argparse.Namespace,
    speed: dict[str, float],
) -> None:
    """The figures, for people."""
    print(
        f"machine speed: calibration {speed['start']} ms before, {speed['end']} ms after "
        "(benchmarks/calibration.py: higher is a slower phase; compare figures taken at similar "
        "calibrations)"
    )
    print(
        f"worker traffic: {args.sensors} sensors, {args.history} readings of history "
        f"{args.interval:g} s apart ({state_bytes:,} bytes of saved state each), "
        f"batches of {args.batch} in records of {args.per_record}; budget factor {factor:g}"
    )
    print(f"{'figure':<26} {'best µs':>9} {'median':>9} {'budget':>8}  verdict")
    for f in figures:
        budget = "" if f.budget is None else f"{f.budget * factor:g}"
        verdict = ""
        if f.budget is not None:
            verdict = "OVER" if over_budget(f.timing.best, f.budget, factor) else "ok"
        print(f"{f.name:<26} {f.timing.best:9.2f} {f.timing.median:9.2f} {budget:>8}  {verdict}")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the option help, the module docstring as written."""


def main(argv: list[str] | None = None) -> int:
    """Measure, print; exit 1 when a figure is over its budget."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.micro", description=__doc__, formatter_class=_Formatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each figure (best wins)")
    parser.add_argument(
        "--budget-factor", type=float, default=1.0, help="multiply every budget (slow machines)"
    )
    parser.add_argument("--sensors", type=int, default=1000, help="sensors of the worker traffic")
    parser.add_argument(
        "--history", type=int, default=720, help="readings of history per sensor before timing"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=10.0,
        help="event-time seconds between a sensor's readings",
    )
    parser.add_argument("--batch", type=int, default=500, help="readings per worker batch")
    parser.add_argument(
        "--per-record", type=int, default=50, help="readings per Kafka record (divides --batch)"
    )
    parser.add_argument(
        "--readings", type=int, default=1000, help="worker readings per repeat (whole batches)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead")
    args = parser.parse_args(argv)
    if args.budget_factor <= 0 or min(args.repeats, args.sensors, args.batch, args.history) < 1:
        parser.error("--budget-factor must be > 0; repeats, sensors, batch, history >= 1")
    if args.per_record < 1 or args.batch % args.per_record:
        parser.error("--per-record must be >= 1 and divide --batch")
    speed = {"start": calibration_ms()}
    figures, state_bytes = measure(args)
    speed["end"] = calibration_ms()
    failed = [f.name for f in figures if over_budget(f.timing.best, f.budget, args.budget_factor)]
    if args.json:
        print(
            json.dumps(
                {
                    "figures": [f.as_dict(args.budget_factor) for f in figures],
                    "state_bytes": state_bytes,
                    "options": vars(args),
                    "over_budget": failed,
                    "calibration_ms": speed,
                }
            )
        )
    else:
        print_table(figures, args.budget_factor, state_bytes, args, speed)
        if failed:
            print(f"over budget: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
