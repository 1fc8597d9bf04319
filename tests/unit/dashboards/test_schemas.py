"""Every board validates against Grafana's dashboard schema and its panels' option schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from dashboards.boards import BOARDS
from tests.unit.dashboards.conftest import load

UIDS = [board.uid for board in BOARDS]


def errors(schema: dict[str, Any], instance: object) -> list[str]:
    validator = Draft7Validator(schema)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(instance)
    ]


def definition(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """A schema whose root is one definition of ``schema`` (keeping its internal refs)."""
    return {
        "$schema": schema.get("$schema", "http://json-schema.org/draft-07/schema#"),
        "$ref": f"#/definitions/{name}",
        "definitions": schema["definitions"],
    }


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in board.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows keep their panels inside
    return out


@pytest.mark.parametrize("uid", UIDS)
def test_dashboard_matches_schema(uid: str, boards: dict[str, Any], schema_dir: Path) -> None:
    board = boards[uid]
    assert board["schemaVersion"] == 41
    assert errors(load(schema_dir / "dashboard.jsonschema.json"), board) == []


@pytest.mark.parametrize("uid", UIDS)
def test_panel_options_match_their_type(uid: str, boards: dict[str, Any], schema_dir: Path) -> None:
    found: list[str] = []
    for panel in panels(boards[uid]):
        if panel["type"] == "row":
            continue
        path = schema_dir / f"{panel['type'].replace('-', '')}.jsonschema.json"
        assert path.is_file(), f"no schema for panel type {panel['type']!r}"
        schema = load(path)
        where = f"{panel['title']} ({panel['type']})"
        assert "options" in panel, f"{where}: no options"
        options = errors(definition(schema, "Options"), panel["options"])
        found += [f"{where} options.{e}" for e in options]
        if "FieldConfig" in schema["definitions"]:
            custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
            found += [
                f"{where} custom.{e}" for e in errors(definition(schema, "FieldConfig"), custom)
            ]
    assert found == []


def test_the_validation_catches_a_broken_board(boards: dict[str, Any], schema_dir: Path) -> None:
    board = dict(boards["urbanpulse-city-overview"])
    board["unknownKey"] = 1
    board["panels"] = [{**board["panels"][0], "gridPos": {"h": "tall"}}]
    found = errors(load(schema_dir / "dashboard.jsonschema.json"), board)
    assert any("unknownKey" in e for e in found)
    assert any("gridPos" in e for e in found)
    stat = load(schema_dir / "stat.jsonschema.json")
    assert errors(definition(stat, "Options"), {"graphMode": "sideways"}) != []
