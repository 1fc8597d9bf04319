"""The deploy shell scripts, and the shell snippets inside compose.yaml, pass ShellCheck."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.unit.deploy.support import DEPLOY, run

SCRIPTS = [
    DEPLOY / "tools" / "install.sh",
    DEPLOY / "tools" / "backup.sh",
    DEPLOY / "tools" / "restore.sh",
    DEPLOY / "compose" / "influxdb" / "create-buckets.sh",
    # InfluxDB 2.x cannot run here: ShellCheck and test_influxdb_tokens.py's stand-in are all the
    # checking the token script gets.
    DEPLOY / "compose" / "influxdb" / "create-tokens.sh",
    *sorted((DEPLOY / "local").glob("*.sh")),
    DEPLOY.parent / ".ci" / "run",
]


def compose_snippets() -> dict[str, str]:
    """Each `sh -c` script and CMD-SHELL health check of compose.yaml, as the shell sees it."""
    services = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())["services"]
    snippets: dict[str, str] = {}
    for name, service in services.items():
        command = service.get("command")
        if isinstance(command, list) and command[0] == "/bin/sh":
            snippets[f"{name}-command"] = command[-1]
        test = service.get("healthcheck", {}).get("test", [])
        if test and test[0] == "CMD-SHELL":
            snippets[f"{name}-healthcheck"] = test[1]
    # Compose turns $$ into $ before the shell runs.
    return {k: "#!/bin/sh\n" + v.replace("$$", "$") + "\n" for k, v in snippets.items()}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_pass_shellcheck(shellcheck: Path, script: Path) -> None:
    result = run(shellcheck, "--external-sources", "--severity=style", script)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_shell_snippets_pass_shellcheck(shellcheck: Path, tmp_path: Path) -> None:
    snippets = compose_snippets()
    assert {"mosquitto-healthcheck", "kafka-healthcheck"} <= set(snippets)
    for name, text in snippets.items():
        path = tmp_path / f"{name}.sh"
        path.write_text(text)
        result = run(shellcheck, "--shell=sh", "--severity=style", path)
        assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"
