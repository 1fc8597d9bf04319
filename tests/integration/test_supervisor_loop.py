"""The supervisor's loop with real child processes (small Python programs, no servers).

Each test runs :class:`urbanpulse.supervisor.Supervisor` in a thread with short back-offs, and
reads what an operator would: the status file, the metrics endpoint and the log. Here, not in
tests/unit: starting, restarting and waiting for processes takes seconds, and tests/unit must
run in seconds (its pure parts: tests/unit/supervisor/).
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port, scrape, wait_for
from urbanpulse.settings import ApiSettings, MetricsSettings, Settings, SupervisorSettings
from urbanpulse.supervisor import ChildRunner, Supervisor, Unit, process_alive
from urbanpulse.supervisor_status import SupervisorStatus, read_status

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
FAILING = [sys.executable, "-c", "import sys; print('cannot reach Kafka'); sys.exit(3)"]


def settings(tmp: Path, **supervisor: float) -> Settings:
    policy = {
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.2,
        "crash_loop_restarts": 3,
        "crash_loop_window_s": 30,
        "stable_after_s": 5,
        "api_ready_timeout_s": 30,
        "stop_grace_s": 5,
    } | supervisor
    return Settings(
        supervisor=SupervisorSettings(run_dir=str(tmp / "run"), **policy),
        metrics=MetricsSettings(supervisor_port=free_port()),
        api=ApiSettings(port=free_port()),
    )


def unit(name: str, command: list[str]) -> Unit:
    return Unit(
        name=name,
        kind="component",
        runner=ChildRunner(name=name, command=command, env={}, fmt="text"),
    )


def serving_api(config: Settings, tmp: Path) -> list[str]:
    """An "API" that takes 1.5 s to listen, then answers /health as the real one does; it
    writes the time it started listening to ``tmp/listening``."""
    code = f"""
import http.server, json, pathlib, time
time.sleep(1.5)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"status": "ok"}}).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
server = http.server.HTTPServer(("127.0.0.1", {config.api.port}), H)
pathlib.Path({str(tmp / "listening")!r}).write_text(repr(time.time()))
server.serve_forever()
"""
    return [sys.executable, "-c", code]


class Running:
    """A supervisor running in a thread of the test."""

    def __init__(self, config: Settings, units: list[Unit]) -> None:
        self.settings = config
        self.supervisor = Supervisor(config, units)
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.code = self.supervisor.run()

    def status(self) -> SupervisorStatus | None:
        return read_status(self.supervisor.status_file)

    def stop(self) -> None:
        self.supervisor.stopping.set()
        self.thread.join(30)


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for each in started:
        each.stop()


def test_a_failing_component_is_restarted_then_reported_while_the_others_run(
    tmp_path: Path, running: list[Running], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "urbanpulse.up")
    sup = Running(settings(tmp_path), [unit("steady", SLEEPER), unit("flaky", FAILING)])
    running.append(sup)

    def looping() -> SupervisorStatus | None:
        status = sup.status()
        return status if status and status.units["flaky"].crash_looping else None

    status = wait_for(looping, 20, "the failing component to be reported crash-looping")
    flaky, steady = status.units["flaky"], status.units["steady"]
    assert flaky.restarts >= 2 and flaky.recent_exits >= 3
    assert flaky.last_exit is not None and flaky.last_exit.reason == "exit code 3"
    assert flaky.last_exit.returncode == 3
    assert (steady.state, steady.restarts, steady.crash_looping) == ("running", 0, False)
    assert steady.pid is not None and process_alive(steady.pid)

    metrics = scrape(sup.settings.metrics.supervisor_port)
    assert metrics["urbanpulse_supervisor_component_crash_looping{component=flaky}"] == 1
    assert metrics["urbanpulse_supervisor_component_crash_looping{component=steady}"] == 0
    assert metrics["urbanpulse_supervisor_restarts_total{component=flaky}"] >= 2
    assert metrics["urbanpulse_supervisor_restarts_total{component=steady}"] == 0
    assert metrics["urbanpulse_supervisor_component_up{component=steady}"] == 1

    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("flaky stopped: exit code 3 after running") for m in messages)
    assert any("flaky is CRASH-LOOPING: 3 exits within 30 s" in m for m in messages)
    assert not any(m.startswith("steady stopped") for m in messages)


def test_the_back_off_grows_between_restarts(tmp_path: Path, running: list[Running]) -> None:
    config = settings(tmp_path, backoff_initial_s=0.2, backoff_max_s=0.8, crash_loop_restarts=10)
    sup = Running(config, [unit("flaky", FAILING)])
    running.append(sup)
    waits: dict[int, float] = {}  # restarts so far -> the wait the supervisor chose
    deadline = time.monotonic() + 20
    while len(waits) < 5 and time.monotonic() < deadline:
        status = sup.status()
        flaky = status.units["flaky"] if status else None
        if flaky and flaky.state == "backing-off" and flaky.next_start_at and flaky.last_exit:
            waits[flaky.restarts] = (flaky.next_start_at - flaky.last_exit.at).total_seconds()
        time.sleep(0.02)
    assert [round(waits.get(n, -1), 2) for n in range(5)] == [0.2, 0.4, 0.8, 0.8, 0.8]


def test_stop_ends_every_component_and_says_stopped(tmp_path: Path, running: list[Running]) -> None:
    sup = Running(settings(tmp_path), [unit("a", SLEEPER), unit("b", SLEEPER)])
    running.append(sup)
    status = wait_for(sup.status, 10, "the first status file")
    pids = [status.units[n].pid for n in ("a", "b")]
    assert all(pid is not None and process_alive(pid) for pid in pids)
    sup.stop()
    assert sup.code == 0
    assert not any(process_alive(pid) for pid in pids if pid is not None)
    final = sup.status()
    assert final is not None and final.state == "stopped"
    assert {u.state for u in final.units.values()} == {"stopped"}
    assert not final.is_stale(final.updated_at.replace(year=final.updated_at.year + 1))


def test_the_banner_comes_only_once_the_api_answers(
    tmp_path: Path, running: list[Running], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "urbanpulse.up")
    config = settings(tmp_path)
    listening = tmp_path / "listening"
    sup = Running(config, [unit("api", serving_api(config, tmp_path))])
    running.append(sup)

    def banner() -> logging.LogRecord | None:
        return next(
            (r for r in caplog.records if r.getMessage().startswith("UrbanPulse is up")), None
        )

    record = wait_for(banner, 20, "the banner")
    assert record.created >= float(listening.read_text())
    assert f"http://127.0.0.1:{config.api.port}/v1/sensors" in record.getMessage()
    status = wait_for(lambda: (s := sup.status()) and s.api_ready and s, 10, "api_ready")
    assert status.api_ready


def test_an_api_that_does_not_come_up_is_reported(
    tmp_path: Path, running: list[Running], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "urbanpulse.up")
    config = settings(tmp_path, api_ready_timeout_s=1)
    sup = Running(config, [unit("api", SLEEPER)])  # runs, but never listens
    running.append(sup)

    def complaint() -> str | None:
        return next((m for r in caplog.records if "did not answer" in (m := r.getMessage())), None)

    message = wait_for(complaint, 10, "the message that the API did not come up")
    assert f"http://127.0.0.1:{config.api.port}/health within 1 s" in message
    assert not any(r.getMessage().startswith("UrbanPulse is up") for r in caplog.records)
    status = sup.status()
    assert status is not None and not status.api_ready


def test_systemd_hears_ready_and_status_and_the_children_do_not_see_its_socket(
    tmp_path: Path, running: list[Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Type=notify: a datagram socket stands in for systemd's (the protocol of sd_notify(3))."""
    address = tmp_path / "notify"
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind(str(address))
    systemd.settimeout(20)
    monkeypatch.setenv("NOTIFY_SOCKET", str(address))
    config = settings(tmp_path)
    seen = tmp_path / "child-env"
    child = [
        sys.executable,
        "-c",
        f"import os, pathlib, time; pathlib.Path({str(seen)!r}).write_text("
        "os.environ.get('NOTIFY_SOCKET', 'none')); time.sleep(600)",
    ]
    sup = Running(config, [unit("worker", child), unit("api", serving_api(config, tmp_path))])
    running.append(sup)
    messages = []
    while not any("READY=1" in m for m in messages):
        messages.append(systemd.recv(4096).decode())
    systemd.close()
    assert any(m.startswith("STATUS=worker running, api running") for m in messages), messages
    assert seen.read_text() == "none"
