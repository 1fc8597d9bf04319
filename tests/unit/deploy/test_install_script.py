"""deploy/tools/install.sh: its --check names what is missing, without installing anything."""

from __future__ import annotations

from pathlib import Path

from tests.unit.deploy.support import REPO, run

SCRIPT = REPO / "deploy" / "tools" / "install.sh"


def test_check_names_every_missing_tool(tmp_path: Path) -> None:
    result = run(SCRIPT, "--check", env={"URBANPULSE_TOOLS_HOME": str(tmp_path)})
    assert result.returncode == 1
    for tool in ("helm", "kubeconform", "hadolint", "shellcheck", "k8s-schemas"):
        assert f"MISSING: {tool} " in result.stderr, result.stderr
    assert not (tmp_path / "bin" / "helm").exists(), "--check must install nothing"


def test_an_unknown_tool_is_refused(tmp_path: Path) -> None:
    result = run(SCRIPT, "--check", "kubectl", env={"URBANPULSE_TOOLS_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "unknown tool kubectl" in result.stderr


def test_every_tool_is_installed_at_its_pinned_version() -> None:
    result = run(SCRIPT, "--check")
    assert result.returncode == 0, f"run deploy/tools/install.sh first:\n{result.stderr}"
