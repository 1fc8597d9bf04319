"""The status file of urbanpulse/supervisor_status.py: written atomically, read back, staleness."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from urbanpulse.supervisor_status import (
    STALE_AFTER_S,
    LastExit,
    SupervisorStatus,
    UnitStatus,
    read_status,
    status_path,
    supervision_health,
    write_status,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def example(state: str = "running", updated: datetime = NOW) -> SupervisorStatus:
    worker = UnitStatus(
        kind="component",
        state="backing-off",
        pid=None,
        since=NOW,
        restarts=5,
        recent_exits=5,
        crash_looping=True,
        next_start_at=NOW + timedelta(seconds=60),
        last_exit=LastExit(at=NOW, reason="exit code 1", returncode=1, ran_s=2.5),
    )
    api = worker.model_copy(
        update={
            "state": "running",
            "pid": 42,
            "restarts": 0,
            "recent_exits": 0,
            "crash_looping": False,
            "next_start_at": None,
            "last_exit": None,
        }
    )
    return SupervisorStatus.model_validate(
        {
            "pid": 7,
            "state": state,
            "started_at": NOW,
            "updated_at": updated,
            "api_ready": True,
            "units": {"worker": worker, "api": api},
        }
    )


def test_written_and_read_back(tmp_path: Path) -> None:
    path = status_path(tmp_path / "run")
    write_status(path, example())
    back = read_status(path)
    assert back == example()
    assert back is not None and back.crash_looping == ["worker"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["supervisor.json"]  # no temporary left


def test_the_file_is_plain_json_with_the_documented_fields(tmp_path: Path) -> None:
    path = status_path(tmp_path)
    write_status(path, example())
    body = json.loads(path.read_text())
    assert body["format"] == 1
    assert set(body) == {"format", "pid", "state", "started_at", "updated_at", "api_ready", "units"}
    assert set(body["units"]["worker"]) == {
        "kind",
        "state",
        "pid",
        "since",
        "restarts",
        "recent_exits",
        "crash_looping",
        "next_start_at",
        "last_exit",
    }


def test_a_rewrite_replaces_the_file_whole(tmp_path: Path) -> None:
    path = status_path(tmp_path)
    write_status(path, example())
    inode = path.stat().st_ino
    write_status(path, example(state="stopped"))
    assert path.stat().st_ino != inode  # renamed over, never written in place
    back = read_status(path)
    assert back is not None and back.state == "stopped"


def test_no_file_reads_as_none(tmp_path: Path) -> None:
    assert read_status(tmp_path / "supervisor.json") is None


def test_another_format_is_refused(tmp_path: Path) -> None:
    path = status_path(tmp_path)
    path.write_text(example().model_copy(update={"format": 2}).model_dump_json())
    with pytest.raises(ValueError, match="format 2"):
        read_status(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a supervisor status file"):
        read_status(path)


def test_a_supervisor_that_stopped_writing_is_stale() -> None:
    assert not example().is_stale(NOW + timedelta(seconds=STALE_AFTER_S - 1))
    assert example().is_stale(NOW + timedelta(seconds=STALE_AFTER_S + 1))
    # A supervisor that stopped cleanly said so last: not stale, however old.
    assert not example(state="stopped").is_stale(NOW + timedelta(days=3))


def test_health_shows_each_component_and_who_crash_loops(tmp_path: Path) -> None:
    write_status(status_path(tmp_path), example())
    health = supervision_health(tmp_path, NOW)
    assert health is not None
    assert (health.state, health.crash_looping) == ("running", ["worker"])
    assert health.components["worker"].last_exit == "exit code 1"
    assert health.components["api"].model_dump() == {
        "state": "running",
        "crash_looping": False,
        "restarts": 0,
        "last_exit": None,
    }


def test_health_says_gone_when_the_supervisor_stopped_writing(tmp_path: Path) -> None:
    write_status(status_path(tmp_path), example())
    later = NOW + timedelta(seconds=STALE_AFTER_S + 1)
    health = supervision_health(tmp_path, later)
    assert health is not None and health.state == "gone"


def test_health_without_a_supervisor_has_no_report(tmp_path: Path) -> None:
    assert supervision_health(tmp_path, NOW) is None
    status_path(tmp_path).write_text("garbage")
    assert supervision_health(tmp_path, NOW) is None  # /health must never fail on it
