"""Fixtures of the deploy checks: the installed tools, each failing its tests when missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.deploy.support import INSTALL, TOOLS_HOME, tool_path


@pytest.fixture(scope="session")
def helm() -> Path:
    return tool_path("helm")


@pytest.fixture(scope="session")
def kubeconform() -> Path:
    return tool_path("kubeconform")


@pytest.fixture(scope="session")
def hadolint() -> Path:
    return tool_path("hadolint")


@pytest.fixture(scope="session")
def shellcheck() -> Path:
    return tool_path("shellcheck")


@pytest.fixture(scope="session")
def k8s_schemas() -> Path:
    """The offline Kubernetes JSON schemas kubeconform reads (kubeconform's own layout)."""
    folder = TOOLS_HOME / "share" / "k8s-schemas"
    if not any(folder.glob("v*-standalone-strict/deployment-apps-v1.json")):
        pytest.fail(
            f"the Kubernetes JSON schemas are not installed in {folder}: run `{INSTALL}` first",
            pytrace=False,
        )
    return folder
