"""The supervisor's status file: what each unit is doing, for ``urbanpulse status`` and /health.

``urbanpulse up`` writes ``<supervisor.run_dir>/supervisor.json`` at every change and at least
every ``HEARTBEAT_S`` seconds, atomically (a temporary file in the same folder, then a rename),
so a reader never sees half a file. The format is :class:`SupervisorStatus` (``format`` 1; a
reader refuses other versions); docs/production.md describes it field by field. A file whose
``updated_at`` is older than ``STALE_AFTER_S`` while its ``state`` is not ``stopped`` means the
supervisor itself is gone (killed, machine stopped): :meth:`SupervisorStatus.is_stale` says so.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

STATUS_FILE = "supervisor.json"
FORMAT = 1
HEARTBEAT_S = 5.0
STALE_AFTER_S = 3 * HEARTBEAT_S

UnitKind = Literal["component", "service"]
# starting: being started (a service's start script is running); running: its process is alive;
# backing-off: it exited and waits for its restart; stopped: the supervisor stopped it.
UnitState = Literal["starting", "running", "backing-off", "stopped"]


class LastExit(BaseModel):
    """How and when a unit's process last stopped on its own."""

    at: datetime = Field(description="when the supervisor saw it stop (UTC)")
    reason: str = Field(description="e.g. 'exit code 1', 'killed by signal SIGKILL (9)'")
    returncode: int | None = Field(
        description="the exit code; negative: the signal; null: unknown (a service, not a child)"
    )
    ran_s: float = Field(description="how long that run lasted, seconds")


class UnitStatus(BaseModel):
    """One supervised component (ingest, worker, api, simulate) or local service."""

    kind: UnitKind
    state: UnitState
    pid: int | None = Field(description="the running process, if any")
    since: datetime = Field(description="when the unit entered this state (UTC)")
    restarts: int = Field(description="restarts since the supervisor started")
    recent_exits: int = Field(description="exits within the crash-loop window")
    crash_looping: bool = Field(
        description="exited at least crash_loop_restarts times within crash_loop_window_s and "
        "has not run stably since; it is still restarted, at the longest back-off"
    )
    next_start_at: datetime | None = Field(description="when a backing-off unit is restarted")
    last_exit: LastExit | None = None


class SupervisorStatus(BaseModel):
    """The whole status file."""

    format: int = FORMAT
    pid: int = Field(description="the supervisor's process id")
    state: Literal["running", "stopping", "stopped"]
    started_at: datetime
    updated_at: datetime = Field(description="rewritten at least every HEARTBEAT_S seconds")
    api_ready: bool = Field(description="the API has answered since the supervisor started")
    units: dict[str, UnitStatus]

    @property
    def crash_looping(self) -> list[str]:
        """Names of the units that are crash-looping."""
        return [name for name, unit in self.units.items() if unit.crash_looping]

    def is_stale(self, now: datetime) -> bool:
        """Whether a supervisor that says it runs has not written for too long (it is gone)."""
        quiet = now - self.updated_at > timedelta(seconds=STALE_AFTER_S)
        return self.state != "stopped" and quiet


def status_path(run_dir: str | Path) -> Path:
    """Where the supervisor of this run folder writes its status."""
    return Path(run_dir) / STATUS_FILE


def write_status(path: Path, status: SupervisorStatus) -> None:
    """Replace the status file atomically; readable by everyone (it holds no secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(status.model_dump_json(indent=2) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_status(path: Path) -> SupervisorStatus | None:
    """The status file, or None when there is none; ValueError when it is not format 1."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        status = SupervisorStatus.model_validate_json(text)
    except ValidationError as err:
        raise ValueError(f"{path} is not a supervisor status file: {err}") from None
    if status.format != FORMAT:
        raise ValueError(f"{path} has format {status.format}; this version reads {FORMAT}")
    return status


class ComponentHealth(BaseModel):
    """One supervised unit as the API's /health shows it."""

    state: UnitState
    crash_looping: bool
    restarts: int
    last_exit: str | None = Field(description="why it last stopped, e.g. 'exit code 1'")


class SupervisionHealth(BaseModel):
    """What the supervisor of this API reports (/health's ``supervisor``)."""

    state: Literal["running", "stopping", "stopped", "gone"] = Field(
        description="'gone': the status file has not been rewritten for too long"
    )
    crash_looping: list[str] = Field(description="units that keep stopping")
    components: dict[str, ComponentHealth]


def supervision_health(run_dir: str | Path, now: datetime) -> SupervisionHealth | None:
    """The supervisor's report for /health; None when no supervisor runs this API."""
    try:
        status = read_status(status_path(run_dir))
    except (OSError, ValueError):
        return None
    if status is None:
        return None
    return SupervisionHealth(
        state="gone" if status.is_stale(now) else status.state,
        crash_looping=status.crash_looping,
        components={
            name: ComponentHealth(
                state=unit.state,
                crash_looping=unit.crash_looping,
                restarts=unit.restarts,
                last_exit=unit.last_exit.reason if unit.last_exit else None,
            )
            for name, unit in status.units.items()
        },
    )
