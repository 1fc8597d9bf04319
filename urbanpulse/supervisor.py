"""``urbanpulse up``: run every component as a child process, keep each one up, one log stream.

A component that stops on its own is started again after a back-off, and one that keeps
stopping is reported as crash-looping, while the others go on (urbanpulse/restart_policy.py
decides when). The local services that ``make up`` started (``--watch-service``) are watched
the same way and restarted through ``deploy/local/services.sh start <service>``. What every
unit does is written to the status file (urbanpulse/supervisor_status.py), exported as
Prometheus metrics (urbanpulse/supervisor_metrics.py) and, under systemd, told to systemd
(urbanpulse/sdnotify.py). Ctrl-C or SIGTERM stops every component; services are left to the
one who started them (``make up`` stops those it started).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

from urbanpulse.logs import LogFormat, relay_line
from urbanpulse.restart_policy import (
    RestartPolicy,
    RunHistory,
    crash_looping,
    exit_reason,
    exited,
    recent_exits,
    restart_delay,
    started,
)
from urbanpulse.sdnotify import notify, watchdog_interval_s
from urbanpulse.settings import Settings
from urbanpulse.supervisor_metrics import SupervisorMetrics
from urbanpulse.supervisor_status import (
    HEARTBEAT_S,
    LastExit,
    SupervisorStatus,
    UnitKind,
    UnitState,
    UnitStatus,
    status_path,
    write_status,
)

log = logging.getLogger("urbanpulse.up")
SETUP_DIR = Path(".local/simulate")
REPORT_EVERY_S = 15.0
POLL_S = 0.5
# Variables meant for the supervisor alone: a child that saw NOTIFY_SOCKET could speak to
# systemd in the supervisor's name.
PRIVATE_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")

Running = Literal["starting", "running"]


class Runner(Protocol):
    """How one unit's process is started and observed."""

    def start(self) -> None:
        """Begin starting the unit (returns at once)."""

    def poll(self) -> Running | int | None:
        """'starting', 'running', or how it ended: the exit code (None: unknown)."""

    def pid(self) -> int | None:
        """The unit's process id while it runs."""

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM)."""

    def wait(self, timeout_s: float) -> bool:
        """Wait for the process to end; whether it did in time."""

    def kill(self) -> None:
        """Kill the process (SIGKILL)."""

    def stopped_on_purpose(self) -> bool:
        """Whether someone else stopped it deliberately, so it must not be restarted."""


@dataclass(kw_only=True)
class ChildRunner:
    """A component run as a child process, its output relayed line by line."""

    name: str
    command: list[str]
    env: dict[str, str]
    fmt: LogFormat
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process and a thread that relays its output."""
        env = {k: v for k, v in (os.environ | self.env).items() if k not in PRIVATE_ENV}
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        relay = threading.Thread(target=_relay, args=(self.name, self.process, self.fmt))
        relay.daemon = True
        relay.start()

    def poll(self) -> Running | int | None:
        """Running, or the exit code (negative: the signal that killed it)."""
        if self.process is None:
            return None
        code = self.process.poll()
        return "running" if code is None else code

    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self.process.pid if self.poll() == "running" and self.process else None

    def terminate(self) -> None:
        """SIGTERM, if it still runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float) -> bool:
        """Wait until it has stopped."""
        if self.process is None:
            return True
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stopped_on_purpose(self) -> bool:
        """Never: only the supervisor stops its children on purpose."""
        return False


@dataclass(kw_only=True)
class ServiceRunner:
    """A local service started by ``services.sh`` (not our child): watched through its pid file.

    It is restarted with ``<script> start <service>``, which starts it in the background and
    returns once the service is healthy; until then the service is 'starting'.
    """

    name: str
    script: str
    pid_file: Path
    starter: subprocess.Popen[bytes] | None = None
    start_failed: int | None = None

    def start(self) -> None:
        """Run the start script in the background (it waits until the service is healthy)."""
        log.info("running %s start %s", self.script, self.name)
        self.start_failed = None
        self.starter = subprocess.Popen(
            [self.script, "start", self.name], stdout=sys.stderr.fileno(), stderr=subprocess.STDOUT
        )

    def poll(self) -> Running | int | None:
        """Starting while the script runs; then running while the pid file's process lives."""
        if self.starter is not None:
            code = self.starter.poll()
            if code is None:
                return "starting"
            self.starter = None
            if code != 0:
                self.start_failed = code
                return code
        return "running" if self.pid() is not None else None

    def pid(self) -> int | None:
        """The service's process id, if it is alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if process_alive(pid) else None

    def stopped_on_purpose(self) -> bool:
        """Whether the pid file was removed: ``services.sh stop`` stopped it, not a crash.

        services.sh removes the pid file a moment after the process ended, so this is asked
        again when the restart is due (the back-off is longer than that moment).
        """
        return not self.pid_file.exists()

    def terminate(self) -> None:
        """Stop a start script still running (the service itself belongs to ``make up``)."""
        if self.starter is not None and self.starter.poll() is None:
            self.starter.terminate()

    def wait(self, timeout_s: float) -> bool:
        """Wait for a running start script."""
        if self.starter is None:
            return True
        try:
            self.starter.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        """Kill a start script that did not stop."""
        if self.starter is not None and self.starter.poll() is None:
            self.starter.kill()
            self.starter.wait()


def process_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (a dead, unreaped service counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the command name in parentheses, which may itself hold spaces.
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _relay(name: str, process: subprocess.Popen[bytes], fmt: LogFormat) -> None:
    assert process.stdout is not None
    with process.stdout:  # closed at the end: a restarted component gets a new pipe
        for raw in process.stdout:
            sys.stdout.write(relay_line(name, raw.decode(errors="replace").rstrip(), fmt) + "\n")
            sys.stdout.flush()


def _wall(monotonic: float) -> datetime:
    """A monotonic time as UTC wall-clock time, for people and the status file."""
    return datetime.now(UTC) + timedelta(seconds=monotonic - time.monotonic())


@dataclass(kw_only=True)
class Unit:
    """One supervised component or service, and what the supervisor knows of it."""

    name: str
    kind: UnitKind
    runner: Runner
    state: UnitState = "stopped"
    since: float = field(default_factory=time.monotonic)
    history: RunHistory = field(default_factory=RunHistory)
    restarts: int = 0
    next_start: float | None = None
    last_exit: LastExit | None = None
    looping: bool = False

    def status(self, now: float, policy: RestartPolicy) -> UnitStatus:
        """This unit as the status file shows it."""
        return UnitStatus(
            kind=self.kind,
            state=self.state,
            pid=self.runner.pid() if self.state == "running" else None,
            since=_wall(self.since),
            restarts=self.restarts,
            recent_exits=recent_exits(self.history, now, policy),
            crash_looping=self.looping,
            next_start_at=_wall(self.next_start) if self.next_start is not None else None,
            last_exit=self.last_exit,
        )


class Supervisor:
    """Starts the units, restarts those that stop, reports, and stops them all on a signal."""

    def __init__(self, settings: Settings, units: list[Unit]) -> None:
        sup = settings.supervisor
        self.settings = settings
        self.units = units
        self.policy = RestartPolicy(
            backoff_initial_s=sup.backoff_initial_s,
            backoff_max_s=sup.backoff_max_s,
            stable_after_s=sup.stable_after_s,
            crash_loop_exits=sup.crash_loop_restarts,
            crash_loop_window_s=sup.crash_loop_window_s,
        )
        self.stopping = threading.Event()
        self.status_file = status_path(sup.run_dir)
        self.started_at = datetime.now(UTC)
        self.metrics = SupervisorMetrics()
        self.readiness = ApiReadiness(settings)
        self._written = 0.0
        self._dirty = True
        self._systemd_status = ""

    def run(self) -> int:
        """Supervise until a signal, then stop every component; the process's exit code."""
        for unit in self.units:
            self.metrics.known(unit.name)
        self.metrics.serve(self.settings.metrics.host, self.settings.metrics.supervisor_port)
        for unit in self.units:
            if unit.kind == "component":
                self._start(unit, time.monotonic())
            else:  # a service already runs: make up started it before us
                unit.state, unit.history = "running", started(unit.history, time.monotonic())
                self.metrics.up.labels(unit.name).set(1)
        self.readiness.start()
        self._loop()
        self._stop_all()
        return 0

    def _loop(self) -> None:
        next_report = time.monotonic() + REPORT_EVERY_S
        watchdog = watchdog_interval_s()
        next_watchdog = time.monotonic()
        while not self.stopping.wait(self._next_wait()):
            now = time.monotonic()
            for unit in self.units:
                self._tend(unit, now)
            if self.readiness.tell_systemd():
                self._dirty = True
            self._publish(now)
            if watchdog is not None and now >= next_watchdog:
                notify("WATCHDOG=1")  # systemd restarts a supervisor whose loop hangs
                next_watchdog = now + watchdog
            if now >= next_report:
                # In a thread: a slow API must not hold up the restarts of this loop.
                threading.Thread(target=_report, args=(self.settings,), daemon=True).start()
                next_report = now + REPORT_EVERY_S
        log.info("stopping (signal received)")

    def _next_wait(self) -> float:
        """Until the next poll, or sooner when a restart falls due before it."""
        due = [u.next_start for u in self.units if u.next_start is not None]
        if not due:
            return POLL_S
        return max(0.01, min(POLL_S, min(due) - time.monotonic()))

    def _tend(self, unit: Unit, now: float) -> None:
        if unit.state in ("starting", "running"):
            seen = unit.runner.poll()
            if not isinstance(seen, str):
                self._exited(unit, seen, now)
            elif seen == "running" and unit.state == "starting":
                self._set(unit, "running", now)
                log.info("%s is running again (pid %s)", unit.name, unit.runner.pid())
        elif unit.state == "backing-off" and unit.next_start is not None and now >= unit.next_start:
            self._start(unit, now)
        looping = crash_looping(unit.history, now, self.policy)
        if unit.looping and not looping:
            log.warning("%s is no longer crash-looping", unit.name)
        if looping != unit.looping:
            unit.looping, self._dirty = looping, True
            self.metrics.crash_looping.labels(unit.name).set(int(looping))

    def _start(self, unit: Unit, now: float) -> None:
        restart = unit.last_exit is not None
        if restart and unit.runner.stopped_on_purpose():
            log.warning("%s was stopped with services.sh stop; not restarting it", unit.name)
            self._set(unit, "stopped", now)
            return
        if restart:
            unit.restarts += 1
            self.metrics.restarts.labels(unit.name).inc()
            log.info("restarting %s (restart %d)", unit.name, unit.restarts)
        unit.next_start = None
        unit.history = started(unit.history, now)
        try:
            unit.runner.start()
        except OSError as err:  # e.g. the executable is gone: a failed run like any other
            log.error("%s could not be started: %s", unit.name, err)
            self._exited(unit, None, now)
            return
        state: UnitState = "starting" if unit.runner.poll() == "starting" else "running"
        self._set(unit, state, now)
        if restart and state == "running":
            log.info("%s is running again (pid %s)", unit.name, unit.runner.pid())

    def _exited(self, unit: Unit, code: int | None, now: float) -> None:
        ran = now - unit.history.started_at if unit.history.started_at is not None else 0.0
        reason = exit_reason(code)
        if isinstance(unit.runner, ServiceRunner) and unit.runner.start_failed is not None:
            reason = f"{unit.runner.script} start {unit.name} failed with exit code {code}"
        unit.last_exit = LastExit(
            at=_wall(now), reason=reason, returncode=code, ran_s=round(ran, 1)
        )
        unit.history = exited(unit.history, now, self.policy)
        self.metrics.up.labels(unit.name).set(0)
        if self.stopping.is_set():
            log.info("%s stopped (%s)", unit.name, reason)
            self._set(unit, "stopped", now)
            return
        if unit.runner.stopped_on_purpose():
            log.warning("%s was stopped with services.sh stop; not restarting it", unit.name)
            self._set(unit, "stopped", now)
            return
        delay = restart_delay(unit.history, self.policy)
        unit.next_start = now + delay
        self._set(unit, "backing-off", now)
        log.error(
            "%s stopped: %s after running %.1f s; restarting it in %.1f s (at %s)",
            unit.name,
            reason,
            ran,
            delay,
            _wall(unit.next_start).astimezone().strftime("%H:%M:%S"),
        )
        if crash_looping(unit.history, now, self.policy):
            log.error(
                "%s is CRASH-LOOPING: %d exits within %.0f s. It is still restarted, at most "
                "every %.0f s; the other components keep running. Its own log lines above "
                "(prefixed [%s]) say why it stops.",
                unit.name,
                recent_exits(unit.history, now, self.policy),
                self.policy.crash_loop_window_s,
                self.policy.backoff_max_s,
                unit.name,
            )

    def _set(self, unit: Unit, state: UnitState, now: float) -> None:
        unit.state, unit.since, self._dirty = state, now, True
        if state == "running":
            self.metrics.up.labels(unit.name).set(1)

    def _publish(
        self, now: float, state: Literal["running", "stopping", "stopped"] = "running"
    ) -> None:
        """Write the status file (on a change, or as a heartbeat) and tell systemd."""
        if not self._dirty and now - self._written < HEARTBEAT_S and state == "running":
            return
        status = SupervisorStatus(
            pid=os.getpid(),
            state=state,
            started_at=self.started_at,
            updated_at=datetime.now(UTC),
            api_ready=self.readiness.ready.is_set(),
            units={unit.name: unit.status(now, self.policy) for unit in self.units},
        )
        try:
            write_status(self.status_file, status)
        except OSError as err:
            log.warning("could not write the status file %s: %s", self.status_file, err)
        self._written, self._dirty = now, False
        line = ", ".join(
            f"{u.name} {u.state}{' (crash-looping)' if u.looping else ''}" for u in self.units
        )
        if line != self._systemd_status:
            notify(f"STATUS={line}")
            self._systemd_status = line

    def _stop_all(self) -> None:
        now = time.monotonic()
        self._publish(now, "stopping")
        for unit in reversed(self.units):
            unit.runner.terminate()
        deadline = now + self.settings.supervisor.stop_grace_s
        for unit in self.units:
            if not unit.runner.wait(max(0.1, deadline - time.monotonic())):
                log.warning(
                    "%s did not stop in %.0f s; killing it",
                    unit.name,
                    self.settings.supervisor.stop_grace_s,
                )
                unit.runner.kill()
            if unit.kind == "component":
                unit.state, unit.next_start = "stopped", None
                self.metrics.up.labels(unit.name).set(0)
        self.readiness.stop.set()
        self._publish(time.monotonic(), "stopped")
        log.info("all components stopped")
        sys.stdout.flush()


class ApiReadiness:
    """Polls the API until it answers, then prints the banner (the URLs); says so if it is late."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        host = settings.api.host if settings.api.host not in ("0.0.0.0", "::") else "127.0.0.1"
        self.base = f"http://{host}:{settings.api.port}"
        self.ready = threading.Event()
        self.stop = threading.Event()
        self._told_systemd = False
        self._gave_up_waiting = threading.Event()

    def start(self) -> None:
        """Poll in a background thread."""
        threading.Thread(target=self._poll, name="api-readiness", daemon=True).start()

    def _poll(self) -> None:
        timeout_s = self.settings.supervisor.api_ready_timeout_s
        deadline = time.monotonic() + timeout_s
        while not self.stop.is_set():
            answer = api_answer(f"{self.base}/health")
            if answer is not None:
                _banner(self.base, answer)
                self.ready.set()
                return
            if not self._gave_up_waiting.is_set() and time.monotonic() > deadline:
                log.error(
                    "the API did not answer %s/health within %.0f s: see its [api] lines above "
                    "(a port taken? InfluxDB settings?). Still waiting for it; the other "
                    "components keep running.",
                    self.base,
                    timeout_s,
                )
                self._gave_up_waiting.set()
            self.stop.wait(POLL_S)

    def tell_systemd(self) -> bool:
        """Send READY=1 once the API answered or its time is up; whether it was sent now."""
        if self._told_systemd or not (self.ready.is_set() or self._gave_up_waiting.is_set()):
            return False
        self._told_systemd = True
        notify("READY=1")
        return True


def api_answer(url: str) -> dict[str, object] | None:
    """The JSON answer of the API's /health, whatever its status (503 too); None: no answer."""
    try:
        # /health itself waits up to 2.5 s for its dependencies: give it time to answer.
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
    except urllib.error.HTTPError as err:
        body = err.read()
    except OSError:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _banner(base: str, health: dict[str, object]) -> None:
    log.info(
        "UrbanPulse is up. Open data: %s/v1/sensors  API docs: %s/docs  health: %s/health  "
        "(Ctrl-C stops everything)",
        base,
        base,
        base,
    )
    if health.get("status") == "ok":
        return
    # Anonymous callers see the status alone (details need an admin API key); the API logs
    # which dependency failed its readiness check, in its [api] lines.
    dependencies = health.get("dependencies")
    down = [
        f"{k}: {v.get('detail')}"
        for k, v in (dependencies.items() if isinstance(dependencies, dict) else ())
        if isinstance(v, dict) and not v.get("ok")
    ]
    log.warning(
        "the API answers, but reports it is not ready: %s",
        "; ".join(down) or "its [api] lines say whether InfluxDB or Kafka does not answer",
    )


def _report(settings: Settings) -> None:
    """Say, from the API itself, what the platform has published so far."""
    host = settings.api.host if settings.api.host not in ("0.0.0.0", "::") else "127.0.0.1"
    try:
        with urllib.request.urlopen(
            f"http://{host}:{settings.api.port}/v1/sensors", timeout=3
        ) as response:
            body = json.load(response)
    except (OSError, ValueError) as err:
        log.info("API not answering yet (%s)", err)
        return
    sensors = body["data"] if isinstance(body, dict) else []
    latest = max(
        (q["last_time"] for s in sensors for q in s["quantities"] if q["last_time"]), default=None
    )
    log.info("API publishes %d sensors; latest reading observed at %s", len(sensors), latest)


def urbanpulse_command(*args: str) -> list[str]:
    """``urbanpulse <args>`` with this interpreter, as the console script would run it."""
    return [sys.executable, "-m", "urbanpulse.cli", *args]


def services_run_dir() -> Path:
    """Where deploy/local/services.sh keeps its pid files.

    ``services.sh env`` exports ``URBANPULSE_SERVICES_RUN_DIR`` (a test instance keeps them
    under ``.local/test-BASE/run``); otherwise ``$URBANPULSE_HOME/run``.
    """
    given = os.environ.get("URBANPULSE_SERVICES_RUN_DIR")
    return Path(given) if given else Path(os.environ.get("URBANPULSE_HOME", ".local")) / "run"


def build_units(settings: Settings, simulate: bool, services: list[str]) -> list[Unit]:
    """The components of the platform, and the services to watch, as supervised units."""
    ingest_env, worker_env = _simulator_setup(settings) if simulate else ({}, {})
    fmt = settings.log_format
    components: list[tuple[str, dict[str, str], list[str]]] = [
        ("ingest", ingest_env, []),
        ("worker", worker_env, []),
        ("api", {}, []),
    ]
    if settings.kpis.enabled:
        # the registry (intervals, districts) as the worker reads it, and the tenant map as
        # ingest reads it (whom a network server's dead letter concerns)
        every = f"{settings.kpis.every_s:g}s"
        components.append(("kpis", ingest_env | worker_env, ["--every", every]))
    if simulate:
        components.append(("simulate", {}, []))
    units = [
        Unit(
            name=name,
            kind="component",
            runner=ChildRunner(
                name=name, command=urbanpulse_command(name, *args), env=env, fmt=fmt
            ),
        )
        for name, env, args in components
    ]
    pid_dir = services_run_dir()
    for name in services:
        runner = ServiceRunner(
            name=name,
            script=settings.supervisor.services_script,
            pid_file=pid_dir / f"{name}.pid",
        )
        if runner.pid() is None:
            log.warning("not watching %s: no running process in %s", name, runner.pid_file)
            continue
        units.append(Unit(name=name, kind="service", runner=runner))
    return units


def run_platform(settings: Settings, simulate: bool, services: list[str] | None = None) -> int:
    """Start the components, keep them up, and stop them all on Ctrl-C or SIGTERM."""
    supervisor: Supervisor | None = None
    stop_early = threading.Event()

    def on_signal(*_: object) -> None:
        stop_early.set()
        if supervisor is not None:
            supervisor.stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    supervisor = Supervisor(settings, build_units(settings, simulate, services or []))
    if stop_early.is_set():
        supervisor.stopping.set()
    watched = [u.name for u in supervisor.units if u.kind == "service"]
    log.info(
        "supervising %s%s; status in %s",
        ", ".join(u.name for u in supervisor.units if u.kind == "component"),
        f", watching {', '.join(watched)}" if watched else "",
        supervisor.status_file,
    )
    return supervisor.run()


def _simulator_setup(settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """Let the simulator write its fleet's registry and tenant map, and point ingest and worker
    at them, so the demo needs no manual setup (settings already given take precedence)."""
    SETUP_DIR.mkdir(parents=True, exist_ok=True)
    registry, tenant_map = SETUP_DIR / "registry.yaml", SETUP_DIR / "tenant-map.json"
    command = [
        sys.executable,
        "-m",
        "urbanpulse.cli",
        "simulate",
        "--setup-only",
        "--registry-out",
        str(registry),
        "--tenant-map-out",
        str(tenant_map),
        "--credentials-dir",
        str(SETUP_DIR / "credentials"),
    ]
    subprocess.run(command, check=True)
    applications = json.loads(tenant_map.read_text()) | settings.decoders.tenant_by_application
    ingest_env = {"URBANPULSE_DECODERS__TENANT_BY_APPLICATION": json.dumps(applications)}
    worker_env = {
        "URBANPULSE_STREAMS__REGISTRY_PATH": settings.streams.registry_path or str(registry)
    }
    log.info("simulated fleet: registry %s, tenant map %s", registry, tenant_map)
    return ingest_env, worker_env
