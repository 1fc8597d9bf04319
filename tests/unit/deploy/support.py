"""Helpers of the deploy checks: the repository's deploy folders, the tools, running them.

The tools that are not Python packages (helm, kubeconform, hadolint, shellcheck, and the
Kubernetes schemas) come from ``deploy/tools/install.sh``; CI runs it before the tests. A test
whose tool is missing fails (it does not skip), naming the tool and the command that installs it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
TOOLS_HOME = REPO / ".local"
INSTALL = "deploy/tools/install.sh"


def tool_path(name: str) -> Path:
    """The installed tool, or a test failure that says how to install it."""
    path = TOOLS_HOME / "bin" / name
    if not path.is_file():
        pytest.fail(
            f"{name} is not installed at {path}: run `{INSTALL}` first "
            f"(it names what is missing; its logs are in .local/logs/tools-{name}.log)",
            pytrace=False,
        )
    return path


def run(
    *args: str | Path, cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output as text; ``env`` is added to this environment."""
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
