"""Turn kubernetes-validate's Kubernetes JSON schemas into standalone files kubeconform can read.

    python k8s_standalone_schemas.py SOURCE DEST VERSION...

SOURCE holds ``v1.30.0-local-strict/`` folders whose files ``$ref`` one shared
``/api/_definitions.json``; kubeconform's file loader cannot follow that absolute reference.
For each VERSION this writes ``DEST/v<VERSION>-standalone-strict/<kind>-<group>-<version>.json``
with only the definitions each schema needs embedded under ``$defs`` -- the layout of
kubeconform's default schema registry, so ``kubeconform -schema-location DEST`` works offline.
Used by deploy/tools/install.sh.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PREFIXES = ("/api/_definitions.json#/$defs/", "#/$defs/")  # from a kind's file; within definitions


def _name(ref: object) -> str | None:
    """The definition name a ``$ref`` points to, if it points into the definitions."""
    if isinstance(ref, str):
        for prefix in PREFIXES:
            if ref.startswith(prefix):
                return ref[len(prefix) :]
    return None


def _refs(node: Any, found: set[str]) -> None:
    """Collect the definition names that ``node`` references, without descending into them."""
    if isinstance(node, dict):
        name = _name(node.get("$ref"))
        if name is not None:
            found.add(name)
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _rewrite(node: Any) -> Any:
    """A copy of ``node`` whose definition references point into the file itself."""
    if isinstance(node, dict):
        out = {k: _rewrite(v) for k, v in node.items()}
        name = _name(out.get("$ref"))
        if name is not None:
            out["$ref"] = "#/$defs/" + name
        return out
    if isinstance(node, list):
        return [_rewrite(v) for v in node]
    return node


def standalone(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """The schema with the closure of its referenced definitions embedded."""
    needed: set[str] = set()
    todo: set[str] = set()
    _refs(schema, todo)
    while todo:
        name = todo.pop()
        if name in needed or name not in definitions:
            continue
        needed.add(name)
        _refs(definitions[name], todo)
    out = _rewrite({k: v for k, v in schema.items() if k != "$id"})
    if needed:
        out["$defs"] = {name: _rewrite(definitions[name]) for name in sorted(needed)}
    return out


def convert(source: Path, dest: Path, version: str) -> int:
    """Write the standalone schemas of one Kubernetes version; return how many."""
    folder = source / f"v{version}-local-strict"
    definitions = json.loads((folder / "_definitions.json").read_text())["$defs"]
    target = dest / f"v{version}-standalone-strict"
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith("_"):
            continue
        schema = json.loads(path.read_text())
        (target / path.name).write_text(json.dumps(standalone(schema, definitions)))
        count += 1
    return count


def main(argv: list[str]) -> int:
    """Convert every version named on the command line."""
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    source, dest = Path(argv[0]), Path(argv[1])
    for version in argv[2:]:
        print(f"v{version}: {convert(source, dest, version)} schemas", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
