"""urbanpulse/logs.py: JSON log lines parse, carry the agreed keys; text stays readable."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support import REPO
from urbanpulse.logs import configure, relay_line


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_parse_with_time_level_logger_message_and_extra_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure("info", "worker", "json")
    log = logging.getLogger("streams.test")
    log.info("stored %d readings", 3, extra={"tenant": "town", "partition": 1})
    log.debug("not at INFO")
    try:
        raise ValueError("bad point")
    except ValueError:
        log.exception("write failed")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "stored 3 readings"
    assert first["level"] == "INFO"
    assert first["logger"] == "streams.test"
    assert first["component"] == "worker"
    assert (first["tenant"], first["partition"]) == ("town", 1)
    at = datetime.fromisoformat(first["time"])
    assert at.tzinfo is not None and at.utcoffset() == UTC.utcoffset(at)
    assert abs((datetime.now(UTC) - at).total_seconds()) < 60
    assert second["level"] == "ERROR"
    assert "ValueError: bad point" in second["exc_info"]


def test_text_lines_are_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    configure("INFO", "api", "text")
    logging.getLogger("api.test").warning("slow query")
    line = capsys.readouterr().err.strip()
    assert line.endswith("WARNING api: slow query")
    with pytest.raises(ValueError):
        json.loads(line)


def test_up_relays_child_lines_as_json_or_with_a_prefix() -> None:
    at = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    child = '{"time": "t", "level": "INFO", "message": "hello"}'
    assert relay_line("api", child, "json") == child
    wrapped = json.loads(relay_line("worker", "Traceback (most recent call last):", "json", at))
    assert wrapped == {
        "time": "2026-11-27T10:00:00+00:00",
        "level": "INFO",
        "logger": "stdout",
        "component": "worker",
        "message": "Traceback (most recent call last):",
    }
    assert json.loads(relay_line("worker", "[1, 2]", "json", at))["message"] == "[1, 2]"
    assert relay_line("api", "hello", "text") == "[api     ] hello"


def test_a_command_logs_json_lines_when_asked(tmp_path: Path) -> None:
    """The CLI wiring: URBANPULSE_LOG_FORMAT=json makes a real command log JSON lines."""
    registry = tmp_path / "sensors.csv"
    registry.write_text("tenant,sensor_id\ntown,air-1\n")
    env = os.environ | {"URBANPULSE_LOG_FORMAT": "json", "URBANPULSE_LOG_LEVEL": "INFO"}
    command = [sys.executable, "-m", "urbanpulse.cli", "credentials", "--registry", str(registry)]
    result = subprocess.run(
        [*command, "--out", str(tmp_path / "out")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert records, "the command logged nothing"
    assert any("wrote" in r["message"] for r in records)
    assert all(r["component"] == "credentials" for r in records)
