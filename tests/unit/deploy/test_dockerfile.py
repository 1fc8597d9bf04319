"""deploy/docker/Dockerfile and .dockerignore: linted with hadolint, and their contract checked.

No Docker engine runs here, so the image is not built: see docs/production.md.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from tests.unit.deploy.support import DEPLOY, REPO, run

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"


def stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split into build stages."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    result: list[list[str]] = []
    for instruction in instructions:
        if instruction.upper().startswith("FROM "):
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def test_hadolint_passes_at_its_strictest(hadolint: Path) -> None:
    result = run(hadolint, "--failure-threshold", "style", "--no-color", DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_find_problems(hadolint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    result = run(hadolint, "--no-color", bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout and "DL3008" in result.stdout


def test_multi_stage_and_the_runtime_stage_runs_as_non_root() -> None:
    build, runtime = stages()
    assert "AS build" in build[0] and "AS runtime" in runtime[0]
    users = [i.split()[1] for i in runtime if i.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(i.startswith("COPY --from=build") for i in runtime)
    assert not any("gcc" in i for i in runtime), "the compiler must stay in the build stage"
    assert not any(re.search(r"(PASSWORD|TOKEN)=", i) for i in runtime), "no secret in images"


def test_dockerignore_lets_every_package_in_and_nothing_else() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "an allow-list: .local/, .venv/ and .env stay out of the context"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in packages:
        assert pattern.rstrip("*") in allowed, f"package {pattern} is not in the build context"
    for copied in re.findall(r"^COPY (?!--from)(\S+)", DOCKERFILE.read_text(), re.M):
        if copied != ".":
            assert copied in allowed, f"the Dockerfile copies {copied}, which .dockerignore drops"
    assert "pyproject.toml" in allowed and project["project"]["readme"] in allowed
