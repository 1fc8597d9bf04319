"""The supervisor watches a local service it did not start, and restarts it when it dies.

``make up`` passes the services it started (``--watch-service``); the supervisor watches each
through its pid file and restarts it with ``<services script> start <service>``. The shared
services of the test run must not be stopped, so this test runs a Mosquitto of its own on a
free port, through a small start script that does what ``deploy/local/services.sh start
mosquitto`` does (start the broker in its own session, write its pid file, return once the port
answers) for this port and folder; the supervisor under test is the real one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port, port_open, wait_for
from urbanpulse.settings import ApiSettings, MetricsSettings, Settings, SupervisorSettings
from urbanpulse.supervisor import ServiceRunner, Supervisor, Unit, process_alive
from urbanpulse.supervisor_status import SupervisorStatus, read_status


def start_script(folder: Path, port: int) -> Path:
    script = folder / "services.sh"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!/usr/bin/env bash
            # `services.sh start mosquitto` for this test's own broker on port {port}.
            set -euo pipefail
            [ "$1 $2" = "start mosquitto" ] || exit 2
            printf 'listener {port} 127.0.0.1\\nallow_anonymous true\\n' >"{folder}/mosquitto.conf"
            setsid mosquitto -c "{folder}/mosquitto.conf" >>"{folder}/mosquitto.log" 2>&1 &
            echo $! >"{folder}/run/mosquitto.pid"
            for _ in $(seq 100); do
              (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && exit 0
              sleep 0.1
            done
            exit 1
            """
        )
    )
    script.chmod(0o755)
    return script


class Watching:
    """The supervisor watching one service, in a thread of the test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "run").mkdir()
        self.port = free_port()
        self.script = start_script(folder, self.port)
        subprocess.run([str(self.script), "start", "mosquitto"], check=True, timeout=30)
        self.pid_file = folder / "run" / "mosquitto.pid"
        config = Settings(
            supervisor=SupervisorSettings(
                run_dir=str(folder / "status"),
                backoff_initial_s=1.0,
                services_script=str(self.script),
            ),
            metrics=MetricsSettings(supervisor_port=0),
            api=ApiSettings(port=free_port()),
        )
        runner = ServiceRunner(name="mosquitto", script=str(self.script), pid_file=self.pid_file)
        self.supervisor = Supervisor(
            config, [Unit(name="mosquitto", kind="service", runner=runner)]
        )
        self.thread = threading.Thread(target=self.supervisor.run, daemon=True)
        self.thread.start()

    def status(self) -> SupervisorStatus | None:
        return read_status(self.supervisor.status_file)

    def pid(self) -> int:
        return int(self.pid_file.read_text())

    def close(self) -> None:
        self.supervisor.stopping.set()
        self.thread.join(30)
        if self.pid_file.exists():
            os.kill(self.pid(), signal.SIGTERM)


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[Watching]:
    running = Watching(tmp_path)
    try:
        yield running
    finally:
        running.close()


def test_a_killed_service_is_restarted_through_its_start_script(watching: Watching) -> None:
    first = watching.pid()
    wait_for(lambda: (s := watching.status()) and s.units["mosquitto"].pid == first, 10, "watch")
    os.kill(first, signal.SIGKILL)

    def restarted() -> SupervisorStatus | None:
        status = watching.status()
        unit = status.units["mosquitto"] if status else None
        return status if unit and unit.state == "running" and unit.pid != first else None

    status = wait_for(restarted, 30, "the supervisor to restart mosquitto")
    unit = status.units["mosquitto"]
    assert (unit.kind, unit.restarts, unit.pid) == ("service", 1, watching.pid())
    assert unit.last_exit is not None and unit.last_exit.returncode is None
    assert "not a child" in unit.last_exit.reason
    assert not process_alive(first) and process_alive(watching.pid())
    assert port_open(watching.port)


def test_a_service_stopped_on_purpose_stays_stopped(watching: Watching) -> None:
    pid = watching.pid()
    wait_for(lambda: (s := watching.status()) and s.units["mosquitto"].pid == pid, 10, "watch")
    # What `services.sh stop mosquitto` does: stop the process, then remove its pid file.
    # services.sh polls every 0.3 s; the supervisor's first back-off (1 s) is longer than that.
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    watching.pid_file.unlink()

    def stopped() -> SupervisorStatus | None:
        status = watching.status()
        return status if status and status.units["mosquitto"].state == "stopped" else None

    status = wait_for(stopped, 10, "the supervisor to leave mosquitto stopped")
    assert status.units["mosquitto"].restarts == 0
    assert not watching.pid_file.exists() and not port_open(watching.port)
