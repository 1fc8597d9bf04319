"""The supervisor finds the pid files of the services instance it was started beside."""

from __future__ import annotations

from pathlib import Path

import pytest

from urbanpulse.supervisor import services_run_dir


def test_the_run_dir_services_sh_exports_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("URBANPULSE_HOME", "/opt/up")
    monkeypatch.setenv("URBANPULSE_SERVICES_RUN_DIR", "/opt/up/test-21630/run")
    assert services_run_dir() == Path("/opt/up/test-21630/run")


def test_without_it_the_standard_instance_under_urbanpulse_home(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("URBANPULSE_SERVICES_RUN_DIR", raising=False)
    monkeypatch.setenv("URBANPULSE_HOME", "/opt/up")
    assert services_run_dir() == Path("/opt/up/run")
