"""``urbanpulse --version``: the installed package's version, exit 0, before any command."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from typer.testing import CliRunner

from tests.conftest import REPO
from urbanpulse.cli import app
from urbanpulse.version import package_version


def test_version_prints_the_installed_version_and_exits_0() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"urbanpulse {package_version()}\n"


def test_the_installed_version_is_the_one_in_pyproject() -> None:
    # The editable install's metadata comes from pyproject.toml: one version source.
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert package_version() == project["version"]


def test_version_wins_over_a_command_and_reads_no_settings() -> None:
    # Eager: answered before the command would start (and before it read any setting).
    env = {"URBANPULSE_API__PORT": "not a number", "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-m", "urbanpulse.cli", "--version", "api"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"urbanpulse {package_version()}\n"
