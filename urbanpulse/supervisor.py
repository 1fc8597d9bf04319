"""``urbanpulse up``: run every component as a child process, with one readable log stream."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass

from urbanpulse.settings import Settings

log = logging.getLogger("urbanpulse.up")
STOP_GRACE_S = 20.0
REPORT_EVERY_S = 15.0


@dataclass
class Child:
    """One running component."""

    name: str
    process: subprocess.Popen[bytes]


def _start(name: str, args: list[str]) -> Child:
    command = [sys.executable, "-m", "urbanpulse.cli", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    threading.Thread(target=_relay, args=(name, process), daemon=True).start()
    return Child(name, process)


def _relay(name: str, process: subprocess.Popen[bytes]) -> None:
    assert process.stdout is not None
    for raw in process.stdout:
        sys.stdout.write(f"[{name:<8}] {raw.decode(errors='replace').rstrip()}\n")
        sys.stdout.flush()


def _api_get(settings: Settings, path: str) -> object:
    url = f"http://{settings.api.host}:{settings.api.port}{path}"
    with urllib.request.urlopen(url, timeout=3) as response:
        return json.load(response)


def _report(settings: Settings) -> None:
    """Say, from the API itself, what the platform has published so far."""
    try:
        body = _api_get(settings, "/v1/sensors")
    except OSError as err:
        log.info("API not answering yet (%s)", err)
        return
    sensors = body["data"] if isinstance(body, dict) else []
    latest = max(
        (q["last_time"] for s in sensors for q in s["quantities"] if q["last_time"]), default=None
    )
    log.info("API publishes %d sensors; latest reading observed at %s", len(sensors), latest)


def _banner(settings: Settings) -> None:
    base = f"http://{settings.api.host}:{settings.api.port}"
    log.info(
        "UrbanPulse is starting. Open data: %s/v1/sensors  API docs: %s/docs  "
        "health: %s/health  (Ctrl-C stops everything)",
        base,
        base,
        base,
    )


def run_platform(settings: Settings, simulate: bool) -> int:
    """Start the components, relay their logs, and stop them all on a signal or a failure."""
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    children = [_start("ingest", ["ingest"]), _start("worker", ["worker"]), _start("api", ["api"])]
    if simulate:
        children.append(_start("simulate", ["simulate"]))
    _banner(settings)
    failed = _watch(settings, children, stopping)
    _stop_all(children)
    return 1 if failed else 0


def _watch(settings: Settings, children: list[Child], stopping: threading.Event) -> bool:
    next_report = time.monotonic() + REPORT_EVERY_S
    while not stopping.wait(0.5):
        for child in children:
            if child.process.poll() is not None:
                log.error(
                    "%s exited with code %s; stopping the platform",
                    child.name,
                    child.process.returncode,
                )
                return True
        if time.monotonic() >= next_report:
            _report(settings)
            next_report = time.monotonic() + REPORT_EVERY_S
    log.info("stopping (signal received)")
    return False


def _stop_all(children: list[Child]) -> None:
    for child in reversed(children):
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0f s; killing it", child.name, STOP_GRACE_S)
            child.process.kill()
            child.process.wait()
    log.info("all components stopped")
    sys.stdout.flush()
