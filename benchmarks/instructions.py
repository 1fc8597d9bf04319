"""Instructions per reading of the hot path, counted by valgrind's callgrind: the same figure
run after run, whatever else the machine is doing.

The CPU-time figures of ``benchmarks.micro`` and ``benchmarks.throughput`` move with this
machine's speed, which changes by tens of percent from hour to hour
(``benchmarks.calibration``): a change worth 5 % of the worker cannot be told from the noise
without many alternated runs. Callgrind runs the Python process on a simulated CPU and
counts the instructions it executes, so an A/B comparison of two commits is one run each.
An instruction count is not a time (a cache miss costs more than an add), so confirm a gain
end to end; and it is this machine's count (its CPython build and libraries).

Each figure is a workload of ``benchmarks.micro`` run twice under callgrind, once with its
setup alone and once with the setup and the measured work; the difference, divided by the
readings of the work, is the figure:

* ``worker P/sensor``: ``StreamWorker.handle_readings`` on ``--batches`` batches of 500
  readings, runs of P readings of one sensor (``benchmarks.micro``'s traffic: ``--sensors``
  sensors with 720 readings of history, the network replaced by fakes), then a snapshot.
* ``decode P/msg``: ``ingest.routing.decode_message`` of native-JSON messages of P readings,
  ``--decode-readings`` readings in all.

The two runs of a figure go in parallel (2 cores); a figure takes about 40 s (the defaults,
four figures: 3 minutes), and a line on stderr says which one is being counted.

Budgets: with the default workloads (``--sensors 200 --batches 16 --decode-readings 20000``)
each figure has a budget, about 8.5 % above what ``main`` counted on 2026-12-07
(:data:`BUDGETS`), and the exit status is 1 when a figure is over it: a regression gate that
this machine's changing speed cannot trip, run by ``make test``
(``tests/integration/test_benchmark_instructions.py``). The counts are those of an
interpreter build: the budgets were set on CPython 3.11.7 built without PGO (pyenv's default,
the slowest common build); another 3.11 build (Debian's, with PGO) counts fewer, and on
another Python version the figures are printed without a verdict.

    .venv/bin/python -m benchmarks.instructions
    .venv/bin/python -m benchmarks.instructions --per-sensor 50 --json

Needs valgrind (Debian: ``apt-get install valgrind``; ``make test`` installs it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from benchmarks import micro
from benchmarks.micro import Traffic, offline_worker
from ingest.routing import decode_message

BATCH = 500  # readings per worker batch, as benchmarks.micro

# Instructions per reading with the default workloads, about 8.5 % above main's counts of
# 2026-12-07 (101,244 / 188,652 / 90,286 / 25,319 on CPython 3.11.7 without PGO; two runs of
# a figure agree within 0.5 %). A change that costs more is a regression to explain.
BUDGETS = {
    "worker 50/sensor": 110_000,
    "worker 1/sensor": 205_000,
    "decode 1/msg": 98_000,
    "decode 50/msg": 27_500,
}
BUDGETED_PYTHON = (3, 11)  # the counts are an interpreter's; other versions get no verdict
DEFAULTS = {"sensors": 200, "batches": 16, "decode_readings": 20_000}
_COLLECTED = re.compile(r"^==\d+== Collected : (\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class Figure:
    """Instructions per reading of one workload."""

    name: str
    readings: int
    setup: int  # instructions of the setup alone
    total: int  # of the setup and the work

    @property
    def per_reading(self) -> float:
        """The work's instructions per reading."""
        return (self.total - self.setup) / self.readings


def budget_of(figure: Figure, args: argparse.Namespace) -> int | None:
    """The figure's budget, or None: no budget for its name, a workload other than the
    default one (the figure per reading depends on it), or another Python version."""
    if sys.implementation.name != "cpython" or sys.version_info[:2] != BUDGETED_PYTHON:
        return None
    if any(getattr(args, name) != value for name, value in DEFAULTS.items()):
        return None
    return BUDGETS.get(figure.name)


def why_no_budgets(args: argparse.Namespace) -> str | None:
    """Why the figures get no verdict (None: they do)."""
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.implementation.name != "cpython" or sys.version_info[:2] != BUDGETED_PYTHON:
        wanted = ".".join(map(str, BUDGETED_PYTHON))
        return f"budgets are for CPython {wanted}; this is {sys.implementation.name} {version}"
    changed = [name for name, value in DEFAULTS.items() if getattr(args, name) != value]
    if changed:
        names = ", ".join("--" + name.replace("_", "-") for name in changed)
        return f"budgets are for the default workloads ({names} changed)"
    return None


def collected(stderr: str) -> int:
    """The instruction count callgrind reports at exit ("Collected : N")."""
    found = _COLLECTED.findall(stderr)
    if len(found) != 1:
        raise RuntimeError(f"callgrind reported no instruction count:\n{stderr[-2000:]}")
    return int(found[0])


def count(workload: list[str]) -> int:
    """Instructions of this module run as ``workload`` under callgrind."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.instructions",
        *workload,
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict and set layouts every run
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(workload)} failed under callgrind:\n{done.stderr[-2000:]}")
    return collected(done.stderr)


def measure(name: str, workload: list[str], units: int, per_unit: int) -> Figure:
    """A figure: the workload with 0 and with ``units`` units of work, in parallel."""
    print(f"counting {name} under callgrind (about 40 s)", file=sys.stderr, flush=True)
    with ThreadPoolExecutor(2) as pool:
        setup, total = pool.map(count, [[*workload, "0"], [*workload, str(units)]])
    return Figure(name, units * per_unit, setup, total)


# -- the workloads, run in the child process under callgrind ---------------------------------


def run_worker(per_sensor: int, sensors: int, batches: int, units: int) -> int:
    """The first ``units`` of ``batches`` prepared batches through
    ``StreamWorker.handle_readings``, after one warm-up batch, then a snapshot; how many
    readings those batches stored."""
    traffic = Traffic(sensors, 720, 10.0, per_sensor, BATCH)
    worker = offline_worker(traffic)
    warm_up, *work = micro.batches(traffic, 1 + batches)  # as many whatever ``units``

    async def run() -> int:
        await worker.handle_readings([(0, v) for v in warm_up])
        stored = 0
        for values in work[:units]:
            stored += await worker.handle_readings([(0, v) for v in values])
        if units:
            await worker.snapshot()
        return stored

    return asyncio.run(run())


def run_decode(per_message: int, messages: int, units: int) -> int:
    """The first ``units`` of ``messages`` prepared native-JSON messages through
    ``decode_message``, after one warm-up message; how many readings those held."""
    prepared = micro.native_messages(per_message, 1 + messages)
    received = datetime.now(UTC)
    warm_up, *work = prepared
    decode_message(*warm_up, received, micro.MAX_PAYLOAD)
    return sum(
        len(decode_message(topic, payload, received, micro.MAX_PAYLOAD).readings)
        for topic, payload in work[:units]
    )


# -- the command ----------------------------------------------------------------------------


def figures(args: argparse.Namespace) -> list[Figure]:
    """Every figure asked for, measured under callgrind."""
    out = []
    for per in args.per_sensor:
        workload = [
            "--workload",
            "worker",
            "--per",
            str(per),
            "--sensors",
            str(args.sensors),
            "--batches",
            str(args.batches),
        ]
        out.append(measure(f"worker {per}/sensor", workload, args.batches, BATCH))
    for per in args.per_message:
        messages = max(1, args.decode_readings // per)
        workload = ["--workload", "decode", "--per", str(per), "--messages", str(messages)]
        out.append(measure(f"decode {per}/msg", workload, messages, per))
    return out


def main(argv: list[str] | None = None) -> int:
    """Measure and print (or run one workload, in the child under callgrind)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--per-sensor",
        type=int,
        nargs="*",
        default=[50, 1],
        help="worker figures: readings per sensor in a row (default 50 1)",
    )
    parser.add_argument(
        "--per-message",
        type=int,
        nargs="*",
        default=[1, 50],
        help="decode figures: readings per message (default 1 50)",
    )
    parser.add_argument(
        "--sensors", type=int, default=DEFAULTS["sensors"], help="worker: sensors (200)"
    )
    parser.add_argument(
        "--batches", type=int, default=DEFAULTS["batches"], help="worker: batches of 500 (16)"
    )
    parser.add_argument(
        "--decode-readings",
        type=int,
        default=DEFAULTS["decode_readings"],
        help="decode: readings (20,000)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--workload", choices=["worker", "decode"], help=argparse.SUPPRESS)
    parser.add_argument("--messages", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--per", type=int, help=argparse.SUPPRESS)
    parser.add_argument("units", nargs="?", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workload == "worker":
        run_worker(args.per, args.sensors, args.batches, args.units)
        return 0
    if args.workload == "decode":
        run_decode(args.per, args.messages, args.units)
        return 0
    sizes = [args.sensors, args.batches, args.decode_readings, *args.per_sensor, *args.per_message]
    if min(sizes) < 1:
        parser.error(
            "sensors, batches, decode readings and readings per sensor or message must be >= 1"
        )
    if shutil.which("valgrind") is None:
        print("benchmarks.instructions needs valgrind: apt-get install valgrind", file=sys.stderr)
        return 2
    measured = figures(args)
    budgets = [budget_of(f, args) for f in measured]
    over = [f.name for f, b in zip(measured, budgets, strict=True) if b and f.per_reading > b]
    if args.json:
        print(
            json.dumps(
                [
                    {**asdict(f), "per_reading": round(f.per_reading), "budget": b}
                    for f, b in zip(measured, budgets, strict=True)
                ]
            )
        )
    else:
        print_table(measured, budgets, why_no_budgets(args))
    if over:
        print(f"over budget: {', '.join(over)}", file=sys.stderr)
    return 1 if over else 0


def print_table(measured: list[Figure], budgets: list[int | None], why_not: str | None) -> None:
    """The figures, their budgets and verdicts, for people."""
    print(f"{'figure':<20} {'instructions/reading':>21} {'readings':>9} {'budget':>9}  verdict")
    for f, budget in zip(measured, budgets, strict=True):
        shown = "" if budget is None else f"{budget:,}"
        verdict = "" if budget is None else ("OVER" if f.per_reading > budget else "ok")
        print(f"{f.name:<20} {f.per_reading:>21,.0f} {f.readings:>9,} {shown:>9}  {verdict}")
    if why_not:
        print(f"no verdicts: {why_not}")


if __name__ == "__main__":
    sys.exit(main())
