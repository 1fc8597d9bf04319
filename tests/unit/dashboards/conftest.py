"""Fixtures of the dashboard tests: the generated boards and the shared Grafana schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dashboards.boards import BOARDS
from dashboards.render import board_json


@pytest.fixture(scope="session")
def schema_dir(shared_dir: Path) -> Path:
    """The Grafana dashboard JSON schemas, read in place from ../shared."""
    path = shared_dir / "schemas" / "grafana-dashboard"
    assert (path / "dashboard.jsonschema.json").is_file(), f"schemas missing in {path}"
    return path


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def boards() -> dict[str, dict[str, Any]]:
    return {board.uid: board_json(board) for board in BOARDS}
