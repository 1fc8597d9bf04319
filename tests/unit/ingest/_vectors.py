"""Reading the shared real-world vectors in place (never copied into the repository)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.decoders import DecodeContext

RECEIVED = datetime(2026, 11, 27, 10, 0, 5, tzinfo=UTC)


def vectors(shared_dir: Path) -> Path:
    return shared_dir / "vectors"


def expected(shared_dir: Path, file: str) -> Any:
    """The manifest's expected values for one vector file."""
    manifest = json.loads((vectors(shared_dir) / "manifest.json").read_text())
    [entry] = [v for v in manifest["vectors"] if v["file"] == file]
    return entry.get("expected")


def load(shared_dir: Path, file: str) -> Any:
    return json.loads((vectors(shared_dir) / file).read_text())


def raw(shared_dir: Path, file: str) -> bytes:
    return (vectors(shared_dir) / file).read_bytes()


def ctx(fmt: str, sensor: str = "s-1", tenant: str = "town") -> DecodeContext:
    return DecodeContext(tenant, sensor, f"urbanpulse/{tenant}/{sensor}/{fmt}", RECEIVED)
