"""The fault matrix: a steady stream of readings, one fault at a time, and what became of each.

Each scenario is a fresh run (benchmarks/stack.py: its own ``urbanpulse ingest`` and
``urbanpulse worker``, tenant, topics and consumer group) on the local services of the
environment (``eval "$(deploy/local/services.sh --test env)"``: the test services of this
checkout). The run publishes native-JSON readings of ``--sensors`` sensors at ``--rate``
readings/s (the throughput benchmark's load, benchmarks/load.py: every reading has its own
sensor, event time and value, so the ground truth follows from the number of messages; with
``--keep`` it is also written to ``truth.tsv`` in the run's folder), lets ``--before``
seconds pass, causes the fault, keeps publishing for ``--after`` seconds after the fault's
end, publishes a control reading, stops, waits until everything published is stored (or
nothing moves for ``--stall`` seconds), and compares every point in InfluxDB with the ground
truth.

Scenarios (``--scenario NAME``, repeatable; ``--fast``: those marked fast; default: all):

{scenarios}

Faults that kill or stop a service act on the services of the environment's instance only:
the pid file of ``$URBANPULSE_SERVICES_RUN_DIR`` (set by ``services.sh env``), checked to be
the process listening on the port of the settings; they restart it with
``deploy/local/services.sh start SERVICE``. Without that environment they refuse to run.
The API is not part of the write path (it only reads InfluxDB and Kafka): its row checks that
killing it loses nothing and that it serves the run's readings again.

Figures of each row:

* published: load readings handed to the publisher (every one was acknowledged by the broker
  before the run ended, or the run says so).
* stored: points of the load's sensors in InfluxDB afterwards.
* lost: published readings with no point.
* duplicates: InfluxDB keeps one point per series and time, so a reading stored twice cannot
  exist as two points of one series. Counted instead: readings stored in more than one series
  (one observation with two tag sets), stored with another value than published, and points
  at a sensor or time that was never published. 0 is the target.
* dead letters: letters on the run's dead-letter topic, with (stage, reason). Expected for
  poison (the kinds and reasons benchmarks/poison.py names), 0 for outages: an outage waits
  and retries, it never dead-letters.
* catch-up: seconds from the fault's end (the service restarted, the poison or garbage
  written) until every reading published by then is countable in InfluxDB.
* control: whether a reading published right after the fault's end became countable (and
  after how many seconds), within ``--control-timeout``.

Target (issue 15): 0 lost and 0 duplicates in every row; catch-up after the 5-minute
InfluxDB outage below 2 minutes at 500 readings/s.

    eval "$(deploy/local/services.sh --test env)" && deploy/local/services.sh --test start
    .venv/bin/python -m benchmarks.faults --fast
    .venv/bin/python -m benchmarks.faults --scenario kill-kafka --scenario stop-influxdb-5min
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.influxql import InfluxQL
from benchmarks.load import LOAD_PREFIX, LoadShape, altered, reading_json, tally
from benchmarks.poison import APPLICATION, POISONS, Poison
from benchmarks.procfs import ProcFs
from benchmarks.stack import Stack, free_port, service_ports
from benchmarks.throughput import Feeder, finish_publisher, get_ready, start_publisher
from simulators.publisher import connect
from urbanpulse.deadletter_reader import read_letters
from urbanpulse.model import DeadLetter
from urbanpulse.mqtt_topics import CAYENNE_LPP, NATIVE_JSON, SENML, device_topic

log = logging.getLogger("faults")
REPO = Path(__file__).resolve().parent.parent
SERVICES_SH = REPO / "deploy" / "local" / "services.sh"
CONTROL_SENSOR = "control"
REGISTRY_RELOAD_S = 1.0
REGISTRY_GARBAGE = b"\xff\xfe\x00sensors: [\x81\x82 {{{ not yaml \xc3\x28\n\t- :\n"


# -- the run's services and processes ------------------------------------------------------


def service_pid(stack: Stack, service: str) -> int:
    """The pid of a service of the environment's instance, checked against its port."""
    run_dir = os.environ.get("URBANPULSE_SERVICES_RUN_DIR")
    if not run_dir:
        raise SystemExit(
            "service faults need the services of an instance: "
            'eval "$(deploy/local/services.sh --test env)" first'
        )
    pid = int((Path(run_dir) / f"{service}.pid").read_text().strip())
    port = service_ports(stack.settings)[service]
    listener = ProcFs().listener(port)
    if listener != pid:
        raise RuntimeError(f"{service}: pid {pid} of {run_dir} does not listen on {port}")
    return pid


def services_sh(*args: str) -> None:
    """``deploy/local/services.sh ARGS`` for the environment's instance."""
    subprocess.run([str(SERVICES_SH), *args], check=True, stdout=subprocess.DEVNULL)


def kill_service(stack: Stack, service: str) -> None:
    """SIGKILL a service of the run, wait until it is gone, start it again."""
    pid = service_pid(stack, service)
    log.info("SIGKILL %s (pid %d)", service, pid)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists():
        # A zombie nobody reaps yet: services.sh would take it for the running service.
        log.warning("%s (pid %d) killed but not reaped; forgetting its pid file", service, pid)
        (Path(os.environ["URBANPULSE_SERVICES_RUN_DIR"]) / f"{service}.pid").unlink()
    services_sh("start", service)


def stop_service(stack: Stack, service: str, seconds: float) -> None:
    """Stop a service of the run (SIGTERM, as services.sh does), wait, start it again."""
    service_pid(stack, service)  # the same check: it is the run's
    log.info("stopping %s for %.0f s", service, seconds)
    services_sh("stop", service)
    time.sleep(seconds)
    services_sh("start", service)


def kill_component(stack: Stack, command: str) -> None:
    """SIGKILL the run's first ingestor or worker and start it again with the same ids."""
    procs = stack.ingestors if command == "ingest" else stack.workers
    old = procs[0]
    log.info("SIGKILL %s (pid %d)", old.name, old.popen.pid)
    old.popen.send_signal(signal.SIGKILL)
    old.popen.wait()
    procs[0] = stack.start(command, 0)


def start_api(stack: Stack, port: int) -> None:
    """Start the run's API on ``port`` and wait until it serves the run's latest readings."""
    stack.apis = [stack.start("api", 0, {"URBANPULSE_API__PORT": str(port)})]
    url = f"http://127.0.0.1:{port}/v1/latest?tenant={stack.tenant}"
    stack.wait("the API serves the run's latest readings", lambda: _serves(url), 60)


def _serves(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status == 200 and bool(json.load(answer)["features"])
    except (OSError, ValueError, KeyError):  # not up yet, or nothing to show yet
        return False


def kill_api(run: FaultRun) -> None:
    """SIGKILL the run's API, start it again on its port, and wait until it serves again."""
    old = run.stack.apis[0]
    log.info("SIGKILL %s (pid %d)", old.name, old.popen.pid)
    old.popen.send_signal(signal.SIGKILL)
    old.popen.wait()
    began = time.monotonic()
    start_api(run.stack, run.api_port)
    log.info("the API served again %.1f s after its restart began", time.monotonic() - began)


def replace_registry(run: FaultRun) -> None:
    """Overwrite the worker's registry file with bytes that are neither UTF-8 nor YAML."""
    run.registry.write_bytes(REGISTRY_GARBAGE)
    time.sleep(3 * REGISTRY_RELOAD_S)  # the worker has looked at it by then


def every_format_stack(workdir: Path, prefix: str, *, shared_group: bool = False) -> Stack:
    """A run's stack whose ingestor reads every format: device topics and network servers.

    The network servers' application :data:`~benchmarks.poison.APPLICATION` maps to the run's
    tenant; the worker reads a registry file in ``workdir`` (see :func:`registry_path`) and
    looks at it every :data:`REGISTRY_RELOAD_S`.
    """
    stack = Stack(workdir, partitions=4, prefix=prefix, shared_group=shared_group)
    tenant = stack.tenant
    stack.base_env |= {
        "URBANPULSE_MQTT__TOPICS": json.dumps(
            [
                *(device_topic(tenant, "+", f) for f in (NATIVE_JSON, SENML, CAYENNE_LPP)),
                f"v3/{APPLICATION}/devices/+/up",
                f"application/{APPLICATION}/device/+/event/up",
            ]
        ),
        "URBANPULSE_DECODERS__TENANT_BY_APPLICATION": json.dumps({APPLICATION: tenant}),
        "URBANPULSE_STREAMS__REGISTRY_PATH": str(registry_path(stack)),
        "URBANPULSE_STREAMS__REGISTRY_RELOAD_S": str(REGISTRY_RELOAD_S),
    }
    return stack


def registry_path(stack: Stack) -> Path:
    """The registry file of a run's worker."""
    return stack.workdir / "registry.yaml"


def start_components(stack: Stack) -> None:
    """A valid registry, the readings topic, one ingestor and one worker, ready."""
    registry_path(stack).write_text(
        f"sensors:\n  - tenant: {stack.tenant}\n    sensor_id: {CONTROL_SENSOR}\n"
    )
    stack.create_topic()
    stack.ingestors = [stack.start("ingest", 0)]
    stack.workers = [stack.start("worker", 0)]
    get_ready(stack)


def publish_control(stack: Stack) -> int:
    """Publish a control reading observed now; its event time in µs."""
    client = connect(stack.settings.mqtt, f"{stack.name}-control")
    t_us = time.time_ns() // 1000
    topic = device_topic(stack.tenant, CONTROL_SENSOR, NATIVE_JSON)
    try:
        client.publish(topic, reading_json(t_us, 20.0), qos=1).wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()
    return t_us


def control_stored(influx: InfluxQL, stack: Stack, t_us: int) -> bool:
    """Whether the control reading of ``t_us`` is countable in InfluxDB."""
    return t_us in influx.times_since(stack.tenant, CONTROL_SENSOR, t_us)


# -- scenarios ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One row of the matrix: what is done, and whether it belongs to the fast rows."""

    name: str
    about: str
    fast: bool
    act: Callable[[FaultRun], None]
    poisons: tuple[Poison, ...] = ()
    settle_s: float = 0  # least load before the fault, whatever --before says
    # The ingestor on an MQTT shared subscription (Compose's profile scale-out, the Helm chart
    # with ingest.sharedGroup), not on the plain persistent one every deployment defaults to.
    shared_group: bool = False
    api: bool = False  # the run also starts an API (`urbanpulse api`)


def _scenarios() -> dict[str, Scenario]:
    rows = [
        Scenario(
            name="kill-mosquitto",
            about="SIGKILL Mosquitto, start it again, the ingestor on a plain subscription "
            "(the default; persistence on, autosave every 30 s; "
            "the fault comes after 35 s of load or more, so the ingestor's session was "
            "saved, as a running platform's is)",
            fast=False,
            act=lambda r: kill_service(r.stack, "mosquitto"),
            settle_s=35,
        ),
        Scenario(
            name="kill-mosquitto-shared",
            about="the same with the ingestor on a shared subscription ($share/<group>/..., "
            "as Compose's profile scale-out and the Helm chart with ingest.sharedGroup run "
            "it); Mosquitto does not save shared subscriptions, so what is published before "
            "the ingestor is back is lost",
            fast=False,
            act=lambda r: kill_service(r.stack, "mosquitto"),
            settle_s=35,
            shared_group=True,
        ),
        Scenario(
            name="kill-api",
            about="SIGKILL the API (it only reads: nothing may be lost), start it again, and "
            "wait until it serves the run's latest readings",
            fast=False,
            act=kill_api,
            api=True,
        ),
        Scenario(
            name="kill-ingest",
            about="SIGKILL the ingestor, start it again (same client id: its session)",
            fast=True,
            act=lambda r: kill_component(r.stack, "ingest"),
        ),
        Scenario(
            name="kill-kafka",
            about="SIGKILL Kafka, start it again",
            fast=False,
            act=lambda r: kill_service(r.stack, "kafka"),
        ),
        Scenario(
            name="kill-worker",
            about="SIGKILL the worker, start it again (same consumer group, same state folder)",
            fast=True,
            act=lambda r: kill_component(r.stack, "worker"),
        ),
        Scenario(
            name="kill-influxdb",
            about="SIGKILL InfluxDB, start it again",
            fast=False,
            act=lambda r: kill_service(r.stack, "influxdb"),
        ),
        Scenario(
            name="stop-kafka-60s",
            about="Kafka stopped for 60 s, then started",
            fast=False,
            act=lambda r: stop_service(r.stack, "kafka", 60),
        ),
        Scenario(
            name="stop-influxdb-5min",
            about="InfluxDB stopped for 5 minutes, then started",
            fast=False,
            act=lambda r: stop_service(r.stack, "influxdb", 300),
        ),
        Scenario(
            name="registry-garbage",
            about="the worker's registry file replaced by bytes that are neither UTF-8 nor YAML",
            fast=True,
            act=replace_registry,
        ),
        Scenario(
            name="poison-all",
            about="every poison message below, one after the other, in one run",
            fast=True,
            act=lambda r: r.publish_poisons(POISONS),
            poisons=POISONS,
        ),
    ]
    rows += [
        Scenario(
            name=f"poison-{p.kind}",
            about=f"poison: {p.about}",
            fast=False,
            act=lambda r, p=p: r.publish_poisons((p,)),  # type: ignore[misc]
            poisons=(p,),
        )
        for p in POISONS
    ]
    return {s.name: s for s in rows}


SCENARIOS = _scenarios()
FAST = tuple(name for name, s in SCENARIOS.items() if s.fast)


# -- one run ------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Row:
    """The figures of one scenario (``--help`` says what each means)."""

    scenario: str
    published: int = 0
    stored: int = 0
    lost: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    letters: dict[str, int] = field(default_factory=dict)  # "kind|stage|reason" → count
    letters_unexpected: list[str] = field(default_factory=list)
    poison_stored: dict[str, int] = field(default_factory=dict)  # poison kind → points
    poison_acked: dict[str, bool] = field(default_factory=dict)
    acks_unexpected: list[str] = field(default_factory=list)
    catch_up_s: float | None = None
    control_s: float | None = None
    control_arrived: bool = False
    drained: bool = False
    error: str = ""
    lost_by_sensor: dict[str, int] = field(default_factory=dict)
    duplicates_by_sensor: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """0 lost, 0 duplicates, the letters expected, the control arrived, all drained."""
        return (
            not self.error
            and not self.letters_unexpected
            and not any(self.poison_stored.values())
            and not self.acks_unexpected
            and self.drained
            and self.control_arrived
            and self.lost == 0
            and self.duplicates == 0
        )


@dataclass(frozen=True, kw_only=True)
class Options:
    """What a run does (``--help``)."""

    rate: float = 500
    sensors: int = 500
    before_s: float = 10
    after_s: float = 20
    stall_s: float = 120
    control_timeout_s: float = 300
    max_backlog: int = 400_000
    keep: bool = False


class FaultRun:
    """One scenario on a fresh stack: start, stream, fault, stream, drain, compare."""

    def __init__(self, scenario: Scenario, options: Options, workdir: Path) -> None:
        self.scenario, self.options, self.workdir = scenario, options, workdir
        self.stack = every_format_stack(workdir, "fm", shared_group=scenario.shared_group)
        self.influx = InfluxQL.from_settings(self.stack.settings.influx)
        self.registry = registry_path(self.stack)
        self.row = Row(scenario=scenario.name)
        self.api_port = free_port()
        self.started_at = datetime.now(UTC)

    def execute(self) -> Row:
        """The whole scenario; an exception becomes the row's error."""
        publisher: subprocess.Popen[bytes] | None = None
        feeder: Feeder | None = None
        try:
            start_components(self.stack)
            if self.scenario.api:
                start_api(self.stack, self.api_port)
            shape = self._shape()
            _, publisher = start_publisher("python", "", self.workdir)  # reconnects
            base = self.stack.worker_taken() or 0.0
            feeder = Feeder(
                shape,
                self.options.rate,
                self.options.max_backlog,
                lambda: (self.stack.worker_taken() or base) - base,
            )
            assert publisher.stdin is not None
            feeder.start(publisher.stdin)
            self._wait(max(self.options.before_s, self.scenario.settle_s))
            self.scenario.act(self)
            self._after_fault(shape, feeder, publisher)
            publisher = None
        except Exception as err:  # the row says what went wrong; the next scenario runs
            log.exception("%s failed", self.scenario.name)
            self.row.error = f"{type(err).__name__}: {err}"[:2000]
        finally:
            if feeder:
                feeder.stop()
            if publisher is not None:
                publisher.kill()
            self.stack.finish(keep=self.options.keep, drop_tenant=self.influx.drop_tenant)
        return self.row

    def _shape(self) -> LoadShape:
        """One round of every sensor per ``sensors / rate`` s; the last event times about now."""
        o = self.options
        interval_us = max(1, round(o.sensors / o.rate * 1_000_000))
        planned_s = o.before_s + o.after_s + 900  # room for long outages; never in the future
        rounds = math.ceil(planned_s * o.rate / o.sensors)
        anchor = time.time_ns() // 1000 - rounds * interval_us
        return LoadShape(self.stack.tenant, o.sensors, 1, interval_us, anchor)

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.stack.check_alive()
            time.sleep(0.5)

    def publish_poisons(self, poisons: tuple[Poison, ...]) -> None:
        """Publish each poison message with its own client (the broker may drop a client)."""
        for poison in poisons:
            client = connect(self.stack.settings.mqtt, f"{self.stack.name}-poison")
            try:
                info = client.publish(poison.topic(self.stack.tenant), poison.payload, qos=1)
                info.wait_for_publish(10)
                self.row.poison_acked[poison.kind] = info.is_published()
            except (RuntimeError, ValueError) as err:  # refused before or while sending
                log.info("poison %s not sent: %s", poison.kind, err)
                self.row.poison_acked[poison.kind] = False
            finally:
                client.disconnect()
                client.loop_stop()

    def _after_fault(
        self, shape: LoadShape, feeder: Feeder, publisher: subprocess.Popen[bytes]
    ) -> None:
        """Load for ``after_s`` more, stop, wait for the drain, compare with the truth."""
        fault_end = time.monotonic()
        due = feeder.sent  # readings published by the fault's end (one per message)
        control_us = publish_control(self.stack)
        last, last_change = -1, time.monotonic()
        feeding = True
        while True:
            self.stack.check_alive()
            now = time.monotonic()
            if feeding and now - fault_end >= self.options.after_s:
                feeder.stop()
                summary = finish_publisher(publisher, self.workdir / "publisher.log")
                log.info("publisher: %s", summary.text)
                feeding = False
            stored = self._observe(now - fault_end, due, control_us)
            if stored != last:
                last, last_change = stored, now
                log.info("stored %d of %d published", stored, feeder.sent)
            if not feeding and stored >= feeder.sent:
                self.row.drained = True
                break
            if not feeding and now - last_change > self.options.stall_s:
                log.warning("nothing stored for %.0f s; giving up waiting", self.options.stall_s)
                break
            time.sleep(1)
        self._compare(shape, feeder.sent)

    def _observe(self, since_fault_s: float, due: int, control_us: int) -> int:
        """Load readings stored now; notes the catch-up and the control reading's arrival."""
        stored = self.influx.count(self.stack.tenant, f"^{LOAD_PREFIX}")
        row = self.row
        if row.catch_up_s is None and stored >= due:
            row.catch_up_s = round(since_fault_s, 1)
        if (
            not row.control_arrived
            and since_fault_s < self.options.control_timeout_s
            and control_us in self.influx.times_since(self.stack.tenant, CONTROL_SENSOR, control_us)
        ):
            row.control_arrived, row.control_s = True, round(since_fault_s, 1)
        return stored

    def _compare(self, shape: LoadShape, messages: int) -> None:
        time.sleep(2)  # poison readings a moment behind the load
        expected = shape.expected_values(messages)
        found = self.influx.points_by_sensor(self.stack.tenant)
        load = {s: v for s, v in found.items() if s.startswith(LOAD_PREFIX)}
        result = tally(
            {s: set(v) for s, v in expected.items()},
            {s: [t for t, _ in v] for s, v in load.items()},
        )
        changed = altered(expected, load)
        row = self.row
        row.published, row.stored, row.lost = result.published, result.stored, result.lost
        row.duplicates = result.duplicates + sum(changed.values())
        row.lost_by_sensor = dict(sorted(result.lost_by_sensor.items())[:20])
        dups = dict(result.duplicates_by_sensor)
        for sensor, n in changed.items():
            dups[sensor] = dups.get(sensor, 0) + n
        row.duplicates_by_sensor = dict(sorted(dups.items())[:20])
        row.acks_unexpected = unexpected_acks(self.scenario.poisons, row.poison_acked)
        row.poison_stored = {
            p.kind: len(found.get(p.sensor_id(), ())) for p in self.scenario.poisons
        }
        if self.options.keep:
            write_truth(self.workdir / "truth.tsv", expected)
        self._count_letters()

    def _count_letters(self) -> None:
        kafka = self.stack.settings.kafka.model_copy(
            update={"deadletter_topic": f"{self.stack.name}-deadletter"}
        )
        scan = read_letters(kafka, self.started_at, limit=100_000, group=f"{self.stack.name}-dl")
        tenant = self.stack.tenant
        found = [
            Letter(
                kind=letter_kind(letter, tenant, self.scenario.poisons),
                stage=letter.stage,
                reason=letter.reason,
            )
            for letter in scan.letters
        ]
        self.row.dead_letters = len(found)
        self.row.letters = dict(sorted(Counter(str(x) for x in found).items()))
        self.row.letters_unexpected = unexpected_letters(found, self.scenario.poisons)


@dataclass(frozen=True, kw_only=True)
class Letter:
    """A dead letter of the run: the poison kind it belongs to (or ``load``), stage, reason."""

    kind: str
    stage: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind}|{self.stage}|{self.reason}"


def letter_kind(letter: DeadLetter, tenant: str, poisons: tuple[Poison, ...]) -> str:
    """Which poison a dead letter is of: by its MQTT topic, or (stage streams) by its sensor."""
    for poison in poisons:
        if letter.topic == poison.topic(tenant):
            return poison.kind
    try:
        sensor = json.loads(base64.b64decode(letter.payload_b64)).get("sensor_id")
    except (ValueError, AttributeError):
        sensor = None
    for poison in poisons:
        if sensor == poison.sensor_id():
            return poison.kind
    return "load"


def unexpected_letters(found: list[Letter], poisons: tuple[Poison, ...]) -> list[str]:
    """How the letters differ from what the poisons should give (none for the load)."""
    want = Counter(Letter(kind=p.kind, stage=s, reason=r) for p in poisons for s, r in p.letters)
    have = Counter(found)
    out = [f"missing {x} x{n}" for x, n in (want - have).items()]
    out += [f"unexpected {x} x{n}" for x, n in (have - want).items()]
    return sorted(out)


def unexpected_acks(poisons: tuple[Poison, ...], acked: dict[str, bool]) -> list[str]:
    """Poisons the broker took though it should refuse them, or refused though it should not."""
    return [
        f"{p.kind}: {'acknowledged' if acked.get(p.kind) else 'not acknowledged'} by the broker"
        for p in poisons
        if acked.get(p.kind, False) == p.broker_refuses
    ]


def write_truth(path: Path, expected: dict[str, dict[int, float]]) -> None:
    """The ground truth: one ``sensor<TAB>time µs<TAB>value`` line per published reading."""
    with path.open("w") as out:
        for sensor, points in sorted(expected.items()):
            for t, value in sorted(points.items()):
                out.write(f"{sensor}\t{t}\t{value}\n")


def run_scenario(name: str, options: Options) -> Row:
    """One scenario in a folder of its own (removed afterwards unless ``keep``)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"faults-{name}-"))
    try:
        return FaultRun(SCENARIOS[name], options, workdir).execute()
    finally:
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)


# -- output -------------------------------------------------------------------------------


def print_rows(rows: list[Row], options: Options) -> None:
    """The matrix, for people."""
    print(f"\nUrbanPulse fault matrix at {options.rate:.0f} readings/s, {options.sensors} sensors")
    print(
        f"{'scenario':<26} {'published':>9} {'stored':>9} {'lost':>6} {'dups':>5} "
        f"{'letters':>7} {'catch-up s':>10} {'control':>8}  verdict"
    )
    for r in rows:
        control = f"{r.control_s} s" if r.control_arrived else "MISSING"
        verdict = "OK" if r.ok else ("ERROR" if r.error else "FAILED")
        catch_up = "n/a" if r.catch_up_s is None else f"{r.catch_up_s}"
        print(
            f"{r.scenario:<26} {r.published:>9,} {r.stored:>9,} {r.lost:>6,} "
            f"{r.duplicates:>5,} {r.dead_letters:>7,} {catch_up:>10} {control:>8}  {verdict}"
        )
        for key, n in r.letters.items():
            print(f"    dead letter {key}: {n}")
        for kind, n in r.poison_stored.items():
            acked = r.poison_acked.get(kind)
            print(f"    poison {kind}: acked by the broker {acked}, points stored {n}")
        if r.lost_by_sensor or r.duplicates_by_sensor:
            print(f"    lost {r.lost_by_sensor} duplicates {r.duplicates_by_sensor}")
        for text in r.letters_unexpected + r.acks_unexpected:
            print(f"    unexpected: {text}")
        if r.error:
            print(f"    error: {r.error}")


def _describe() -> str:
    lines = [f"  {s.name:<26} {'[fast] ' if s.fast else ''}{s.about}" for s in SCENARIOS.values()]
    return __doc__.format(scenarios="\n".join(lines)) if __doc__ else ""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the option help, the description as written."""


def parse_args(argv: list[str] | None) -> tuple[list[str], Options, bool]:
    """Scenarios, options, and whether to print JSON (``--help`` explains each)."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.faults", description=_describe(), formatter_class=_Formatter
    )
    p.add_argument("--scenario", action="append", choices=list(SCENARIOS), help="a row to run")
    p.add_argument("--fast", action="store_true", help="the fast rows: " + ", ".join(FAST))
    p.add_argument("--rate", type=float, default=500, help="load readings/s (one per message)")
    p.add_argument("--sensors", type=int, default=500, help="load sensors (one topic each)")
    p.add_argument("--before", type=float, default=10, help="seconds of load before the fault")
    p.add_argument("--after", type=float, default=20, help="seconds of load after the fault's end")
    p.add_argument("--stall", type=float, default=120, help="give up after no progress, s")
    p.add_argument(
        "--max-backlog",
        type=int,
        default=400_000,
        help="hold the publisher back while this many published readings are not yet taken by "
        "the worker (the 5-minute InfluxDB outage at 500/s needs 150,000 or more)",
    )
    p.add_argument(
        "--control-timeout", type=float, default=300, help="the control reading's deadline, s"
    )
    p.add_argument("--keep", action="store_true", help="keep topics, data, logs, truth.tsv")
    p.add_argument("--json", action="store_true", help="one JSON object per row instead")
    args = p.parse_args(argv)
    if args.rate <= 0 or args.sensors < 1:
        p.error("--rate must be > 0 and --sensors >= 1")
    names = list(args.scenario or [])
    if args.fast:
        names += [n for n in FAST if n not in names]
    options = Options(
        rate=args.rate,
        sensors=args.sensors,
        before_s=args.before,
        after_s=args.after,
        stall_s=args.stall,
        max_backlog=args.max_backlog,
        control_timeout_s=args.control_timeout,
        keep=args.keep,
    )
    return names or list(SCENARIOS), options, args.json


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen rows one by one, print them; exit 1 unless every row is OK."""
    names, options, as_json = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s", stream=sys.stderr
    )
    rows = []
    for name in names:
        log.info("scenario %s", name)
        row = run_scenario(name, options)
        rows.append(row)
        if as_json:
            print(json.dumps(asdict(row) | {"ok": row.ok}), flush=True)
    if not as_json:
        print_rows(rows, options)
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
