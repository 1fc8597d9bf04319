"""The web front end's scripts: the browser install and the vendoring script pass ShellCheck,
and the browser install is idempotent and reports clearly (checked without installing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.deploy.support import DEPLOY, run

SCRIPTS = [DEPLOY / "local" / "browser.sh", DEPLOY / "tools" / "vendor-web.sh"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_pass_shellcheck(shellcheck: Path, script: Path) -> None:
    result = run(shellcheck, "--severity=style", script)
    assert result.returncode == 0, result.stdout + result.stderr


def test_browser_script_refuses_an_unknown_option() -> None:
    result = run(DEPLOY / "local" / "browser.sh", "--bogus")
    assert result.returncode == 2 and "unknown option" in result.stderr


def test_make_test_installs_the_browser_before_the_tests() -> None:
    text = (DEPLOY / "local" / "test.sh").read_text()
    assert "deploy/local/browser.sh" in text
    assert text.index("deploy/local/browser.sh") < text.index("pytest tests/integration")
