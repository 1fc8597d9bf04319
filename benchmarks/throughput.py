"""Steady-state throughput of UrbanPulse end to end, on the running local services.

Starts its own ``urbanpulse ingest`` (``--ingestors``, one MQTT shared subscription) and
``urbanpulse worker`` (``--workers``, one consumer group) processes, with a tenant, topics,
client ids, consumer group and metrics ports of its own, against the running Mosquitto, Kafka
and InfluxDB (``make services-start``; they are shared, so the run touches nothing of anyone
else's and stops only its own processes). Then:

1. publishes native-JSON readings (the peer kit's shape) of ``--sensors`` sensors,
   ``--per-message`` readings a message, at ``--rate`` readings/s (0: as fast as the broker
   acks), with the Go publisher of the peer kit (``$PUB``, default /tmp/benchpub) or, without
   it, ``benchmarks/mqtt_pub.py``; the publisher is held back while more than
   ``--max-backlog`` published readings are not yet taken by the workers, so the run always
   ends in a bounded time and a platform slower than the offered rate runs saturated;
2. lets ``--warmup`` seconds pass, then measures over ``--seconds`` (the window), then stops
   publishing and waits until every published reading is in InfluxDB (or nothing moves for
   ``--stall`` seconds);
3. fetches every point of the run's tenant from InfluxDB and compares it with what was
   published; then removes the run's topics, consumer group, MQTT sessions and InfluxDB
   series (``--keep`` keeps them).

What each figure means:

* readings/s stored: load readings that became countable in InfluxDB during the window
  (InfluxQL count at both ends) / window seconds. Offered: readings handed to the publisher
  in the window / seconds. Backlog: published readings the workers had not taken yet, at the
  window's start and end (growing = the platform is slower than the offered rate, and the
  stored rate is its capacity).
* published, stored, lost, duplicates: over the whole run (warm-up, window, drain).
  Published = every reading in a message the publisher sent and the broker acknowledged.
  Each reading is a distinct InfluxDB point (sensor, time); lost = published readings with no
  point; duplicates = points beyond the published set (a time or sensor never published, or
  one observation stored in two series). Probe and readiness readings are counted too.
* latency publish → queryable: a probe reading (its own sensor, observed "now") is published
  every ``--probe-every`` seconds during the window, and InfluxDB is polled every 25 ms (or a
  tenth of the oldest outstanding probe's age, if longer) until it is countable; p50/p99/max
  over the probes of the window, nearest rank. A probe not found within ``--probe-timeout``
  counts as missing (and as infinitely late in the percentiles).
* CPU-s per 1,000 readings: CPU seconds (user + system, all threads, from /proc) a process
  used during the window, per 1,000 readings stored in the window, for each ingestor and
  worker, Mosquitto, Kafka and InfluxDB (found by their listening ports), the publisher and
  this script (probes, counting); "machine" is every core's busy time (/proc/stat: all -
  idle - iowait, as the peer kit counts it), so it includes whatever else runs on the machine
  (look at the load average printed with it). % core: CPU seconds / window seconds. The
  services are shared: their CPU includes other people's work. So the same is measured for
  ``--idle`` seconds before the load starts ("idle % core"), and "net" CPU-s per 1,000
  subtracts that rate from the window's (an estimate: other work does not stay constant).
* services' age: seconds since Mosquitto, Kafka and InfluxDB started. Younger than
  :data:`YOUNG_SERVICE_S` they are likely still warming up (Kafka's JVM compiles under its
  first load, not with time), and the run says so: its CPU figures are high. Count the first
  run after starting them as warm-up.
* InfluxDB's state: its garbage collector's target (``GOGC`` in its environment; 100 when
  unset, Go's default) and the series its database holds (InfluxDB's estimate). Both change
  its CPU or memory per reading: ``deploy/local/services.sh`` starts it at 400, and a
  database grown by earlier runs (the peer kit never deletes its series) holds its index in
  the heap (docs/performance.md, 2026-12-07 07:07).
* machine speed: ``benchmarks.calibration`` (the CPU time of a fixed piece of single-threaded
  Python work) before the run and after it. This machine's speed changes by up to 40 % within
  minutes, and every CPU figure above with it: compare runs at similar calibrations.
* RSS: the largest resident set of each process sampled every second in the window; peak:
  the kernel's high-water mark (``VmHWM``) over the process's life.
* readings per process (from its /metrics, in the window): what an ingestor wrote to Kafka and
  what a worker took from it, to see how the shared subscription and the partitions split
  the load between several ingestors and workers.

``--profile DIR`` samples each ingestor and worker with py-spy (in the dev extras) over the
window, while they hold the GIL, and prints the shares of the known hot spots, by package and
the top functions; the sampling costs a few % of a core, so profile in a run of its own.

    .venv/bin/python -m benchmarks.throughput --rate 1500 --seconds 60
    .venv/bin/python -m benchmarks.throughput --per-message 50 --rate 5000 --json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmarks.calibration import calibration_ms
from benchmarks.figures import cpu_per_thousand, per_second, percentile
from benchmarks.influxql import InfluxQL
from benchmarks.load import LOAD_PREFIX, LoadShape, Tally, reading_json, tally
from benchmarks.procfs import ProcFs
from benchmarks.profiles import parse_collapsed
from benchmarks.stack import Stack, service_ports
from simulators.publisher import connect

log = logging.getLogger("throughput")
PROC = ProcFs()
PLANNED_MAX_RATE = 100_000  # readings/s assumed with --rate 0, to place the event times
PROBE_SENSOR = "probe"
READY_SENSOR = "ready"
PUB_SUMMARY = re.compile(r"published (\d+) messages in ([\d.]+) s .*errors (\d+)")
# What the profile summary picks out: label → consecutive frames (caller first), as regexes.
PROFILE_MARKERS: dict[str, tuple[str, ...]] = {
    "worker: process_sensor": (r"^process_sensor ",),
    "worker: snapshots (states encoded, changelog)": (r"^LiveStates\.snapshot ",),
    "worker: records parsed (wire.decode_record)": (r"^parse_records ",),
    "worker: InfluxDB writes (line protocol, HTTP)": (r"^InfluxWriter\.write",),
    "worker: of which raw line protocol": (r"^reading_lines ",),
    "worker: aggregate line protocol": (r"^aggregate_line ",),
    "worker: Kafka sends (StreamWorker._send)": (r"^StreamWorker\._send ",),
    "ingest: decode_message": (r"^decode_message ",),
    "ingest: message ids (sha256 per reading)": (r"^DecodeContext\.message_id ",),
    "ingest: Kafka produce + delivery reports": (r"^KafkaSink\.(send|poll) ",),
    "ingest: paho network thread": (r"^Client\._thread_main ",),
}
PROJECT_FILES = ("streams/", "ingest/", "urbanpulse/")


# -- the load ---------------------------------------------------------------------------


class Feeder:
    """Writes the load's lines to the publisher's stdin at the rate, within the backlog bound."""

    def __init__(
        self,
        shape: LoadShape,
        rate: float,
        max_backlog: int,
        taken: Callable[[], float | None],
    ) -> None:
        self.shape = shape
        self.messages_per_s = rate / shape.per_message
        self.max_backlog = max_backlog
        self._taken = taken  # readings the workers took since the load started
        self.sent = 0  # messages handed to the publisher
        self.held_s = 0.0  # time spent held back by the backlog bound
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, stdin: IO[bytes]) -> None:
        """Feed in a background thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, args=(stdin,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop feeding, and wait for the thread."""
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self, stdin: IO[bytes]) -> None:
        start = last = time.monotonic()
        taken, taken_at = 0.0, 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now - taken_at > 0.25:
                taken, taken_at = self._taken() or taken, now
            due = math.inf if not self.messages_per_s else (now - start) * self.messages_per_s
            room = (self.max_backlog - (self.sent * self.shape.per_message - taken)) // (
                self.shape.per_message
            )
            if room <= 0 and due > self.sent:
                self.held_s += now - last
            last = now
            n = int(min(due - self.sent, room, 1000))
            if n <= 0:
                time.sleep(0.01)
                continue
            stdin.write(self.shape.lines(self.sent, self.sent + n))
            stdin.flush()
            self.sent += n


def start_publisher(kind: str, path: str, workdir: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """The Go publisher of the peer kit if wanted and present, else the Python one."""
    if kind in ("go", "auto") and Path(path).is_file() and os.access(path, os.X_OK):
        command, name = [path, "-inflight", "500"], "publisher (go)"
    elif kind == "go":
        raise SystemExit(f"no Go publisher at {path}: build it (/work/shared/bench/README.md)")
    else:
        command, name = [sys.executable, "-m", "benchmarks.mqtt_pub"], "publisher (python)"
    with (workdir / "publisher.log").open("wb") as out:  # the child keeps its own copy
        popen = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT
        )
    return name, popen


@dataclass
class PublisherSummary:
    """What the publisher printed at the end."""

    messages: int = 0
    seconds: float = 0.0
    errors: int = 0
    text: str = ""


def finish_publisher(popen: subprocess.Popen[bytes], logfile: Path) -> PublisherSummary:
    """Close the publisher's input, wait until every publish is acknowledged, read its summary."""
    assert popen.stdin is not None
    popen.stdin.close()
    popen.wait(timeout=600)
    text = logfile.read_text(errors="replace").strip()
    match = PUB_SUMMARY.search(text)
    if match is None:
        raise RuntimeError(f"the publisher failed: {text[-1000:]}")
    return PublisherSummary(int(match[1]), float(match[2]), int(match[3]), match[0])


POLL_S = 0.025  # the shortest wait between two looks for the outstanding probes
POLL_SHARE = 0.1  # and at most this share of the oldest outstanding probe's age


def poll_wait(oldest_age_s: float) -> float:
    """Seconds to wait before looking for the probes again: 25 ms, or a tenth of the oldest
    outstanding probe's age. So a probe is timed to within 25 ms up to 250 ms of latency (a
    steady load's), to within a tenth beyond; under saturation, where probes wait in the
    queue for a second or more, the run queries InfluxDB a few times less, and the machine's
    CPU figure counts less of the benchmark's own polling."""
    return max(POLL_S, POLL_SHARE * oldest_age_s)


class Probes:
    """Publishes a probe reading now and then, and finds out when each became countable."""

    def __init__(self, stack: Stack, influx: InfluxQL, every_s: float, timeout_s: float) -> None:
        self._stack, self._influx = stack, influx
        self._every_s, self._timeout_s = every_s, timeout_s
        self.published: list[tuple[int, float]] = []  # (event time µs, monotonic publish time)
        self.latency_ms: dict[int, float] = {}
        self._publishing = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """Start publishing and polling."""
        self._publishing.set()
        self._thread.start()

    def stop_publishing(self) -> None:
        """No more probes; keep looking for those outstanding."""
        self._publishing.clear()

    def stop(self) -> None:
        """Wait for the outstanding probes (up to the timeout), then stop."""
        deadline = time.monotonic() + self._timeout_s
        while self.outstanding() and time.monotonic() < deadline:
            time.sleep(0.1)
        self._stop.set()
        self._thread.join()

    def outstanding(self) -> list[tuple[int, float]]:
        """Probes published and not found yet, and not given up on."""
        now = time.monotonic()
        return [
            (t, at)
            for t, at in self.published
            if t not in self.latency_ms and now - at < self._timeout_s
        ]

    def _run(self) -> None:
        topic = f"urbanpulse/{self._stack.tenant}/{PROBE_SENSOR}/json"
        client = connect(self._stack.settings.mqtt, f"{self._stack.name}-probe")
        next_probe = time.monotonic()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._publishing.is_set() and now >= next_probe:
                    t_us = time.time_ns() // 1000
                    client.publish(topic, reading_json(t_us, 20.0), qos=1)
                    self.published.append((t_us, time.monotonic()))
                    next_probe = now + self._every_s
                wait_s = POLL_S
                waiting = self.outstanding()
                if waiting:
                    found = self._influx.times_since(
                        self._stack.tenant, PROBE_SENSOR, min(t for t, _ in waiting)
                    )
                    seen = time.monotonic()
                    for t, at in waiting:
                        if t in found:
                            self.latency_ms[t] = (seen - at) * 1000
                    wait_s = poll_wait(seen - min(at for _, at in waiting))
                if self._publishing.is_set():  # the next probe leaves on time
                    wait_s = min(wait_s, max(0.0, next_probe - time.monotonic()))
                time.sleep(wait_s)
        finally:
            client.disconnect()
            client.loop_stop()


def get_ready(stack: Stack) -> list[int]:
    """Publish readiness readings until every component works; return their event times."""
    client = connect(stack.settings.mqtt, f"{stack.name}-ready")
    times: list[int] = []

    def received() -> bool:
        t_us = time.time_ns() // 1000
        topic = f"urbanpulse/{stack.tenant}/{READY_SENSOR}/json"
        client.publish(topic, reading_json(t_us, 20.0), qos=1).wait_for_publish(10)
        times.append(t_us)
        return stack.ingestors_received()

    try:
        stack.wait("every ingestor receives from its subscription", received, 120)
    finally:
        client.disconnect()
        client.loop_stop()
    stack.wait("every worker owns partitions of the readings topic", stack.group_ready, 180)
    stack.wait("the workers took the readiness readings", stack.caught_up, 120)
    return times


# -- measuring ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Tracked:
    """A process whose CPU time and memory are measured (with its descendants if ``tree``)."""

    name: str
    pid: int
    tree: bool = False

    def pids(self) -> set[int]:
        """The process, and its descendants when asked."""
        return PROC.tree(self.pid) if self.tree else {self.pid}


@dataclass(frozen=True)
class Snapshot:
    """Counters at one instant."""

    at: float  # monotonic
    ticks: dict[str, int]
    machine: int
    stored: int
    sent_messages: int
    taken: float | None
    handled: dict[str, float | None]


def snapshot(
    tracked: list[Tracked], influx: InfluxQL, tenant: str, feeder: Feeder, stack: Stack
) -> Snapshot:
    """CPU ticks, machine ticks and stored readings now (the count takes a moment: mid-time)."""
    before = time.monotonic()
    ticks = {t.name: PROC.ticks(t.pids()) for t in tracked}
    machine = PROC.machine_busy()
    stored = influx.count(tenant, f"^{LOAD_PREFIX}")
    handled = {p.name: stack.handled(p) for p in stack.processes}
    taken: float | None = sum(v or 0.0 for k, v in handled.items() if k.startswith("worker"))
    if any(v is None for k, v in handled.items() if k.startswith("worker")):
        taken = None
    at = (before + time.monotonic()) / 2
    return Snapshot(at, ticks, machine, stored, feeder.sent, taken, handled)


def idle_rates(tracked: list[Tracked], seconds: float) -> dict[str, float]:
    """Cores each process uses with no load (``machine``: the whole machine), over ``seconds``."""
    if seconds <= 0:
        return {}
    hz = PROC.ticks_per_second()
    start = time.monotonic()
    before = {t.name: PROC.ticks(t.pids()) for t in tracked}
    machine = PROC.machine_busy()
    time.sleep(seconds)
    elapsed = time.monotonic() - start
    rates = {t.name: (PROC.ticks(t.pids()) - before[t.name]) / hz / elapsed for t in tracked}
    rates["machine"] = (PROC.machine_busy() - machine) / hz / elapsed
    return rates


class RssSampler:
    """The largest resident set of each tracked process, sampled every second."""

    def __init__(self, tracked: list[Tracked]) -> None:
        self.tracked = tracked
        self.max_kb: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for t in self.tracked:
                kb = sum(PROC.rss(pid) for pid in t.pids())
                self.max_kb[t.name] = max(self.max_kb.get(t.name, 0), kb)


def services(stack: Stack) -> list[Tracked]:
    """Mosquitto, Kafka and InfluxDB, found by the ports the settings name."""
    found = []
    for name, port in service_ports(stack.settings).items():
        pid = PROC.listener(port)
        if pid is None:
            log.warning("no process of %s listens on port %d here: not measured", name, port)
        else:
            found.append(Tracked(name, pid))
    return found


# A service younger than this is still warming up: Kafka's JVM compiles its hot paths in the
# first minutes under load, and InfluxDB compacts what it found at start. The first run after
# a start (services 20-30 s old) spent 1.5-2.4 times Kafka's CPU per reading of the runs after
# it, and its machine figure was the highest of its series in four of five series; the second
# (services about 150 s old) was in line with the later ones (docs/performance.md).
YOUNG_SERVICE_S = 120.0


def services_age(found: list[Tracked]) -> dict[str, float]:
    """Seconds since each service (:func:`services`) started; a warning for those still
    warming up."""
    ages: dict[str, float] = {}
    for t in found:
        age = PROC.age_s(t.pid)
        if age is not None:
            ages[t.name] = round(age, 1)
    young = {name: age for name, age in ages.items() if age < YOUNG_SERVICE_S}
    if young:
        log.warning(
            "services started %s s ago (under %.0f s) are likely still warming up: Kafka's JVM "
            "compiles under its first load, so this run's CPU figures will be high; count it "
            "as warm-up and measure with the next run",
            young,
            YOUNG_SERVICE_S,
        )
    return ages


def influx_state(found: list[Tracked], influx: InfluxQL) -> dict[str, Any]:
    """InfluxDB's collector target (``GOGC``) and series count estimate, where readable."""
    pid = next((t.pid for t in found if t.name == "influxdb"), None)
    env = PROC.environment(pid) if pid is not None else None
    try:
        series = influx.series_estimate()
    except (OSError, RuntimeError) as err:  # an InfluxDB 2.x without InfluxQL, say
        log.warning("InfluxDB's series count not read: %s", err)
        series = None
    return {"gogc": None if env is None else env.get("GOGC", "100"), "series_estimate": series}


def start_profilers(stack: Stack, directory: Path, seconds: float) -> list[subprocess.Popen[bytes]]:
    """py-spy over each ingestor and worker for the window."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    directory.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(p.popen.pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "100",
                "--nonblocking",
                "--gil",
                "--format",
                "raw",
                "-o",
                str(directory / f"{p.name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in stack.processes
    ]


# -- the report ---------------------------------------------------------------------------


@dataclass
class ProcessFigures:
    """One process over the window."""

    name: str
    pid: int
    cpu_s: float
    cpu_s_per_1k: float | None
    core_pct: float
    rss_max_mb: float | None
    rss_peak_mb: float | None
    idle_core_pct: float | None = None  # before the load: the process's (or others') own work
    net_cpu_s_per_1k: float | None = None  # CPU-s per 1,000 minus the idle rate's share
    handled: float | None = None  # readings an ingestor wrote / a worker took, in the window


@dataclass
class Report:
    """The figures of one run (``--json`` prints this)."""

    options: dict[str, Any]
    names: dict[str, str]
    load_average: dict[str, list[float]] = field(default_factory=dict)
    calibration_ms: dict[str, float] = field(default_factory=dict)  # benchmarks.calibration
    services_age_s: dict[str, float] = field(default_factory=dict)  # at the window's start
    influxdb: dict[str, Any] = field(default_factory=dict)  # influx_state, before the load
    window_s: float = 0.0
    stored_in_window: int = 0
    readings_per_s: float = 0.0
    offered_per_s: float = 0.0
    backlog_start: float | None = None
    backlog_end: float | None = None
    held_back_s: float = 0.0
    publisher: dict[str, Any] = field(default_factory=dict)
    published: int = 0
    stored: int = 0
    lost: int = 0
    duplicates: int = 0
    lost_by_sensor: dict[str, int] = field(default_factory=dict)
    duplicates_by_sensor: dict[str, int] = field(default_factory=dict)
    drained: bool = False
    probes: int = 0
    probes_missing: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_max_ms: float | None = None
    processes: list[ProcessFigures] = field(default_factory=list)
    machine_cpu_s: float = 0.0
    machine_cpu_s_per_1k: float | None = None
    machine_idle_core_pct: float | None = None
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Everything published was stored exactly once."""
        return self.drained and not self.lost and not self.duplicates


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages now."""
    return [round(v, 2) for v in os.getloadavg()]


def process_figures(
    tracked: list[Tracked],
    a: Snapshot,
    b: Snapshot,
    stored: int,
    rss: RssSampler,
    idle: dict[str, float],
) -> list[ProcessFigures]:
    """CPU and memory of each tracked process over the window (``idle``: cores used before)."""
    hz, seconds = PROC.ticks_per_second(), b.at - a.at
    out = []
    for t in tracked:
        cpu = (b.ticks[t.name] - a.ticks[t.name]) / hz
        peak = PROC.rss(t.pid, "VmHWM")
        net = None if t.name not in idle else max(0.0, cpu - idle[t.name] * seconds)
        out.append(
            ProcessFigures(
                name=t.name,
                pid=t.pid,
                cpu_s=round(cpu, 2),
                cpu_s_per_1k=_round(cpu_per_thousand(cpu, stored), 4),
                core_pct=round(per_second(cpu, seconds) * 100, 1),
                rss_max_mb=_round(rss.max_kb.get(t.name, 0) / 1024 or None, 1),
                rss_peak_mb=_round(peak / 1024 or None, 1),
                handled=_delta(a.handled.get(t.name), b.handled.get(t.name)),
                idle_core_pct=_round(idle[t.name] * 100, 1) if t.name in idle else None,
                net_cpu_s_per_1k=_round(None if net is None else cpu_per_thousand(net, stored), 4),
            )
        )
    return out


def _delta(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else end - start


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def latency(probes: Probes, a: Snapshot, b: Snapshot, report: Report) -> None:
    """Percentiles of the probes published in the window."""
    window = [t for t, at in probes.published if a.at <= at <= b.at]
    found = [probes.latency_ms[t] for t in window if t in probes.latency_ms]
    report.probes, report.probes_missing = len(window), len(window) - len(found)
    values = found + [math.inf] * report.probes_missing
    report.latency_p50_ms = _round(percentile(values, 50), 1)
    report.latency_p99_ms = _round(percentile(values, 99), 1)
    report.latency_max_ms = _round(max(values, default=None), 1)


def summarise_profiles(directory: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """Shares of the marked functions and the top functions, per profiled process."""
    out = {}
    for name in names:
        path = directory / f"{name}.txt"
        if not path.exists():
            continue
        profile = parse_collapsed(path.read_text())
        out[name] = {
            "samples": profile.samples,
            "marked": {k: round(profile.matching(*rx), 3) for k, rx in PROFILE_MARKERS.items()},
            "by_package": [(k, round(v, 3)) for k, v in profile.by_package()[:12]],
            "top_self": [(f, round(v, 3)) for f, v in profile.top(15, inclusive=False)],
            "top_project": [(f, round(v, 3)) for f, v in profile.top(20, within=PROJECT_FILES)],
        }
    return out


# -- the run ------------------------------------------------------------------------------


def wait_window(stack: Stack, seconds: float) -> None:
    """Sleep ``seconds``, failing early if a component died."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        stack.check_alive()
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))


def drain(influx: InfluxQL, stack: Stack, expected: int, stall_s: float) -> bool:
    """Wait until InfluxDB holds every published load reading, or nothing moves for ``stall_s``."""
    last, last_change = -1, time.monotonic()
    while True:
        stack.check_alive()
        stored = influx.count(stack.tenant, f"^{LOAD_PREFIX}")
        if stored != last:
            last, last_change = stored, time.monotonic()
            log.info("stored %d of %d", stored, expected)
        if stored >= expected:
            return True
        if time.monotonic() - last_change > stall_s:
            log.warning("nothing stored for %.0f s; giving up waiting", stall_s)
            return False
        time.sleep(2)


def plan_shape(args: argparse.Namespace, tenant: str) -> LoadShape:
    """Event times: ``--interval`` apart per sensor, the last about now (never in the future)."""
    planned = (args.rate or PLANNED_MAX_RATE) * (args.warmup + args.seconds)
    rounds = math.ceil(planned / args.sensors) + args.per_message
    interval_us = round(args.interval * 1_000_000)
    span_us = rounds * interval_us
    if span_us > 20 * 3600 * 1_000_000:
        raise SystemExit("the run would span more than 20 h of event time: lower --interval")
    anchor = time.time_ns() // 1000 - span_us
    return LoadShape(tenant, args.sensors, args.per_message, interval_us, anchor)


class Run:
    """One run: its components, load, window and checks, in the order :meth:`execute` says."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.stack = Stack(workdir, args.partitions)
        self.influx = InfluxQL.from_settings(self.stack.settings.influx)
        self.report = Report(
            options={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            names={
                "tenant": self.stack.tenant,
                "topic": self.stack.topic,
                "group": self.stack.group,
            },
        )
        self.publisher: subprocess.Popen[bytes] | None = None
        self.feeder: Feeder | None = None
        self.idle: dict[str, float] = {}

    def execute(self) -> Report:
        """Start the components, load them, measure the window, drain, verify, clean up."""
        self.report.load_average["start"] = load_average()
        self.report.calibration_ms["start"] = calibration_ms()
        log.info("run %s, logs in %s", self.stack.name, self.workdir)
        try:
            ready_times = self.start_components()
            shape, feeder, tracked, probes = self.start_load()
            a, b = self.measure(feeder, tracked)
            self.finish_load(feeder, probes)
            self.verify(shape, feeder, probes, ready_times)
            latency(probes, a, b, self.report)
        finally:
            self.close()
        self.report.calibration_ms["end"] = calibration_ms()
        return self.report

    def start_components(self) -> list[int]:
        """The run's topic, ingestors and workers, ready; the readiness readings' times."""
        self.stack.create_topic()
        self.stack.ingestors = [self.stack.start("ingest", n) for n in range(self.args.ingestors)]
        self.stack.workers = [self.stack.start("worker", n) for n in range(self.args.workers)]
        return get_ready(self.stack)

    def start_load(self) -> tuple[LoadShape, Feeder, list[Tracked], Probes]:
        """Publisher, feeder and probes running; the processes to measure."""
        args, stack = self.args, self.stack
        shape = plan_shape(args, stack.tenant)
        pub_name, self.publisher = start_publisher(args.publisher, args.pub, self.workdir)
        found = services(stack)
        tracked = (
            [Tracked(p.name, p.popen.pid, tree=True) for p in stack.processes]
            + found
            + [
                Tracked(pub_name, self.publisher.pid, tree=True),
                Tracked("this script", os.getpid()),
            ]
        )
        self.report.services_age_s = services_age(found)
        self.report.influxdb = influx_state(found, self.influx)
        log.info("measuring the processes without load for %.0f s", args.idle)
        self.idle = idle_rates(tracked, args.idle)
        base = stack.worker_taken() or 0.0
        self.feeder = Feeder(
            shape, args.rate, args.max_backlog, lambda: (stack.worker_taken() or 0.0) - base
        )
        assert self.publisher.stdin is not None
        self.feeder.start(self.publisher.stdin)
        probes = Probes(stack, self.influx, args.probe_every, args.probe_timeout)
        probes.start()
        return shape, self.feeder, tracked, probes

    def measure(self, feeder: Feeder, tracked: list[Tracked]) -> tuple[Snapshot, Snapshot]:
        """Warm up, then take the window's figures (and profiles, if asked)."""
        args, stack, report = self.args, self.stack, self.report
        log.info("warming up for %.0f s", args.warmup)
        wait_window(stack, args.warmup)
        rss = RssSampler(tracked)
        rss.start()
        profilers = start_profilers(stack, args.profile, args.seconds) if args.profile else []
        a = snapshot(tracked, self.influx, stack.tenant, feeder, stack)
        held = feeder.held_s
        report.load_average["window_start"] = load_average()
        log.info("measuring for %.0f s", args.seconds)
        wait_window(stack, args.seconds - (time.monotonic() - a.at))
        b = snapshot(tracked, self.influx, stack.tenant, feeder, stack)
        report.load_average["window_end"] = load_average()
        report.held_back_s = round(feeder.held_s - held, 1)
        rss.stop()
        window(report, feeder.shape, a, b, tracked, rss, self.idle)
        for spy in profilers:
            spy.wait(timeout=120)
        if args.profile:
            report.profiles = summarise_profiles(args.profile, [p.name for p in stack.processes])
        return a, b

    def finish_load(self, feeder: Feeder, probes: Probes) -> None:
        """Stop publishing, and wait until everything published is stored (or stalls)."""
        feeder.stop()
        probes.stop_publishing()
        assert self.publisher is not None
        summary = finish_publisher(self.publisher, self.workdir / "publisher.log")
        self.publisher = None
        self.report.publisher = asdict(summary)
        expected = feeder.shape.per_message * feeder.sent
        self.report.drained = drain(self.influx, self.stack, expected, self.args.stall)
        probes.stop()

    def verify(
        self, shape: LoadShape, feeder: Feeder, probes: Probes, ready_times: list[int]
    ) -> None:
        """Compare every point of the run's tenant with what was published."""
        expected = shape.expected(feeder.sent)
        expected[PROBE_SENSOR] = {t for t, _ in probes.published}
        found = self.influx.times_by_sensor(self.stack.tenant)
        # The broker drops what is published before the ingestors' subscription exists, so
        # a readiness reading may be missing; one never published would still count.
        expected[READY_SENSOR] = set(ready_times) & set(found.get(READY_SENSOR, ()))
        counted(self.report, tally(expected, found))

    def close(self) -> None:
        """Stop what runs; remove the run's topics, group, sessions and series (unless --keep)."""
        if self.feeder:
            self.feeder.stop()
        if self.publisher is not None:
            self.publisher.kill()
        self.stack.finish(keep=self.args.keep, drop_tenant=self.influx.drop_tenant)


def window(
    report: Report,
    shape: LoadShape,
    a: Snapshot,
    b: Snapshot,
    tracked: list[Tracked],
    rss: RssSampler,
    idle: dict[str, float],
) -> None:
    """The window's rates, backlog and CPU figures."""
    seconds = b.at - a.at
    stored = b.stored - a.stored
    report.window_s = round(seconds, 1)
    report.stored_in_window = stored
    report.readings_per_s = round(per_second(stored, seconds))
    sent = (b.sent_messages - a.sent_messages) * shape.per_message
    report.offered_per_s = round(per_second(sent, seconds))
    if a.taken is not None and b.taken is not None:
        report.backlog_start = a.sent_messages * shape.per_message - a.taken
        report.backlog_end = b.sent_messages * shape.per_message - b.taken
    report.processes = process_figures(tracked, a, b, stored, rss, idle)
    machine = (b.machine - a.machine) / PROC.ticks_per_second()
    report.machine_cpu_s = round(machine, 2)
    if "machine" in idle:
        report.machine_idle_core_pct = round(idle["machine"] * 100, 1)
    report.machine_cpu_s_per_1k = _round(cpu_per_thousand(machine, stored), 4)


def counted(report: Report, result: Tally) -> None:
    """The exactly-once figures."""
    report.published, report.stored = result.published, result.stored
    report.lost, report.duplicates = result.lost, result.duplicates
    report.lost_by_sensor = dict(sorted(result.lost_by_sensor.items())[:20])
    report.duplicates_by_sensor = dict(sorted(result.duplicates_by_sensor.items())[:20])


def print_report(report: Report) -> None:
    """The figures, for people."""
    o = report.options
    print(
        f"\nUrbanPulse throughput: {o['ingestors']} ingestor(s), {o['workers']} worker(s), "
        f"{o['partitions']} partitions; {o['sensors']} sensors, {o['per_message']} reading(s) "
        f"per message, rate {o['rate'] or 'as fast as the broker acks'}"
        f"{'' if not o['rate'] else ' readings/s'}, max backlog {o['max_backlog']:,}"
    )
    la = report.load_average
    print("load average (1/5/15 min): " + "; ".join(f"{k} {v}" for k, v in la.items()))
    print(
        "services' age           "
        + ", ".join(f"{k} {v:,.0f} s" for k, v in report.services_age_s.items())
        + f" (younger than {YOUNG_SERVICE_S:.0f} s: still warming up, CPU figures high)"
    )
    influx = report.influxdb
    print(
        f"InfluxDB                GOGC {influx.get('gogc') or '?'}, "
        f"{_num(influx.get('series_estimate'))} series (estimate) before the run"
    )
    cal = report.calibration_ms
    print(
        "machine speed           calibration "
        + ", ".join(f"{k} {v} ms" for k, v in cal.items())
        + " (CPU of a fixed workload, benchmarks/calibration.py: higher is a slower phase)"
    )
    print(f"window                  {report.window_s} s after {o['warmup']} s of warm-up")
    print(
        f"readings stored         {report.readings_per_s:,.0f}/s ({report.stored_in_window:,} in "
        f"the window); offered {report.offered_per_s:,.0f}/s; backlog {_num(report.backlog_start)}"
        f" → {_num(report.backlog_end)}; publisher held back {report.held_back_s} s"
    )
    verdict = "OK" if report.ok else "NOT EXACTLY ONCE" if report.drained else "NOT DRAINED"
    print(
        f"exactly once            published {report.published:,}, stored {report.stored:,}, "
        f"lost {report.lost:,}, duplicates {report.duplicates:,}: {verdict}"
    )
    for what, by_sensor in (("lost", report.lost_by_sensor), ("dup", report.duplicates_by_sensor)):
        if by_sensor:
            print(f"  {what} by sensor (first 20): {by_sensor}")
    print(
        f"publish → queryable     p50 {_num(report.latency_p50_ms)} ms, p99 "
        f"{_num(report.latency_p99_ms)} ms, max {_num(report.latency_max_ms)} ms "
        f"({report.probes} probes, {report.probes_missing} missing)"
    )
    print(f"publisher               {report.publisher.get('text', '')}")
    print(
        f"\n{'process':<20} {'pid':>8} {'CPU-s':>7} {'% core':>7} {'idle %':>7} {'CPU-s/1k':>9}"
        f" {'net/1k':>8} {'RSS max MB':>11} {'peak MB':>8} {'readings':>9}"
    )
    for p in report.processes:
        print(
            f"{p.name:<20} {p.pid:>8} {p.cpu_s:>7.2f} {p.core_pct:>7.1f} "
            f"{_num(p.idle_core_pct, 1):>7} {_num(p.cpu_s_per_1k, 4):>9} "
            f"{_num(p.net_cpu_s_per_1k, 4):>8} {_num(p.rss_max_mb, 1):>11} "
            f"{_num(p.rss_peak_mb, 1):>8} {'' if p.handled is None else f'{p.handled:9,.0f}'}"
        )
    machine_pct = report.machine_cpu_s / max(report.window_s, 1e-9) * 100
    print(
        f"{'machine (all cores)':<20} {'':>8} {report.machine_cpu_s:>7.2f} {machine_pct:>7.1f} "
        f"{_num(report.machine_idle_core_pct, 1):>7} {_num(report.machine_cpu_s_per_1k, 4):>9}"
    )
    for name, prof in report.profiles.items():
        print(f"\nprofile of {name}: {prof['samples']} samples holding the GIL")
        kind = name.split("-")[0]
        for label, share in prof["marked"].items():
            if label.startswith(kind):
                print(f"  {share * 100:5.1f} %  {label}")
        print(
            "  own time by package: "
            + ", ".join(f"{k} {v * 100:.0f} %" for k, v in prof["by_package"] if v >= 0.01)
        )
        print("  top functions of the project (inclusive):")
        for function, share in prof["top_project"][:12]:
            print(f"  {share * 100:5.1f} %  {function}")
        print("  top functions (own time):")
        for function, share in prof["top_self"][:10]:
            print(f"  {share * 100:5.1f} %  {function}")


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "∞"
    return f"{value:,.{digits}f}"


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the option help, the module docstring as written."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options (``--help`` explains each)."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.throughput", description=__doc__, formatter_class=_Formatter
    )
    p.add_argument("--per-message", type=int, default=1, help="readings per MQTT message")
    p.add_argument("--sensors", type=int, default=1000, help="load sensors (one topic each)")
    p.add_argument(
        "--rate", type=float, default=0, help="offered readings/s; 0: as fast as the broker acks"
    )
    p.add_argument("--seconds", type=float, default=60, help="length of the measured window")
    p.add_argument("--warmup", type=float, default=20, help="seconds of load before the window")
    p.add_argument(
        "--interval", type=float, default=1.0, help="event-time seconds between a sensor's readings"
    )
    p.add_argument("--ingestors", type=int, default=1, help="ingest processes (one $share group)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (one consumer group)")
    p.add_argument("--partitions", type=int, default=4, help="partitions of the readings topic")
    p.add_argument(
        "--max-backlog",
        type=int,
        default=50_000,
        help="hold the publisher back while this many published readings are not yet taken "
        "by the workers",
    )
    p.add_argument(
        "--publisher", choices=("auto", "go", "python"), default="auto", help="auto: Go if present"
    )
    p.add_argument(
        "--pub", default=os.environ.get("PUB", "/tmp/benchpub"), help="the Go publisher ($PUB)"
    )
    p.add_argument("--probe-every", type=float, default=0.5, help="seconds between latency probes")
    p.add_argument(
        "--probe-timeout", type=float, default=300, help="a probe not countable by then is missing"
    )
    p.add_argument(
        "--idle", type=float, default=10, help="seconds the processes are measured before the load"
    )
    p.add_argument(
        "--stall", type=float, default=90, help="stop waiting for the drain after no progress, s"
    )
    p.add_argument("--profile", type=Path, help="record py-spy profiles of ingest and worker here")
    p.add_argument("--keep", action="store_true", help="keep the run's topics, data and logs")
    p.add_argument(
        "--json", action="store_true", help="print the report as JSON instead of a table"
    )
    args = p.parse_args(argv)
    if min(args.per_message, args.sensors, args.ingestors, args.workers, args.partitions) < 1:
        p.error("--per-message, --sensors, --ingestors, --workers and --partitions must be >= 1")
    if args.seconds <= 0 or args.warmup < 0 or args.rate < 0 or args.interval <= 0:
        p.error("--seconds and --interval must be > 0; --warmup and --rate >= 0")
    return args


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run, print; exit 1 unless every published reading was stored exactly once."""
    args = parse_args(argv)
    # Stopped from outside (a job runner, or kill): still stop the components and clean up.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s", stream=sys.stderr
    )
    workdir = Path(tempfile.mkdtemp(prefix="throughput-"))
    try:
        report = Run(args, workdir).execute()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(asdict(report) | {"ok": report.ok}))
    else:
        print_report(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
