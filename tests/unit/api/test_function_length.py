"""No function in api/ grows past 80 lines: routes stay one module per resource, and an app
factory that holds them all as closures (as ``create_app`` once did, 605 lines) fails here."""

from __future__ import annotations

import ast
from pathlib import Path

MAX_LINES = 80
API = Path(__file__).resolve().parents[3] / "api"


def function_lengths(folder: Path) -> dict[str, int]:
    """Lines from ``def`` to the last line of every function (nested ones too) under ``folder``."""
    found = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                where = f"{path.relative_to(folder.parent)}:{node.lineno} {node.name}"
                found[where] = (node.end_lineno or node.lineno) - node.lineno + 1
    return found


def test_no_function_in_api_is_longer_than_80_lines() -> None:
    lengths = function_lengths(API)
    assert len(lengths) > 100  # the walk found the package
    too_long = {where: n for where, n in lengths.items() if n > MAX_LINES}
    assert not too_long, f"split these (at most {MAX_LINES} lines): {too_long}"
