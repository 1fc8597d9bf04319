"""``urbanpulse up``: run every component as a child process, with one readable log stream."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from urbanpulse.logs import LogFormat, relay_line
from urbanpulse.settings import Settings

log = logging.getLogger("urbanpulse.up")
STOP_GRACE_S = 20.0
SETUP_DIR = Path(".local/simulate")
REPORT_EVERY_S = 15.0


@dataclass
class Child:
    """One running component."""

    name: str
    process: subprocess.Popen[bytes]


def _start(
    name: str, args: list[str], env: dict[str, str] | None = None, fmt: LogFormat = "text"
) -> Child:
    command = [sys.executable, "-m", "urbanpulse.cli", *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ | (env or {})
    )
    threading.Thread(target=_relay, args=(name, process, fmt), daemon=True).start()
    return Child(name, process)


def _relay(name: str, process: subprocess.Popen[bytes], fmt: LogFormat) -> None:
    assert process.stdout is not None
    for raw in process.stdout:
        sys.stdout.write(relay_line(name, raw.decode(errors="replace").rstrip(), fmt) + "\n")
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
    ingest_env, worker_env = _simulator_setup(settings) if simulate else ({}, {})
    fmt = settings.log_format
    children = [
        _start("ingest", ["ingest"], ingest_env, fmt),
        _start("worker", ["worker"], worker_env, fmt),
        _start("api", ["api"], fmt=fmt),
    ]
    if simulate:
        children.append(_start("simulate", ["simulate"], fmt=fmt))
    _banner(settings)
    failed = _watch(settings, children, stopping)
    _stop_all(children)
    return 1 if failed else 0


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
