"""The vendored front-end packages are exactly the pinned npm versions, with their licences.

deploy/tools/vendor-web.sh fetches each package at the version package.json pins, checks the
tarball against the integrity package-lock.json records, copies the files and writes
vendored.json with every file's sha256. Here: pins, lock and manifest agree, and every file on
disk is listed and has its recorded checksum (a hand edit or a stray file fails).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
HERE = REPO / "deploy" / "tools" / "web-vendor"


def load(name: str) -> Any:
    return json.loads((HERE / name).read_text())


PINS: dict[str, str] = load("package.json")["dependencies"]
LOCK: dict[str, Any] = load("package-lock.json")["packages"]
MANIFEST: dict[str, Any] = load("vendored.json")


def test_every_pin_is_exact_and_vendored() -> None:
    assert set(MANIFEST) == set(PINS)
    for name, pin in PINS.items():
        assert pin[0].isdigit(), f"{name}: pin an exact version, not a range ({pin})"


@pytest.mark.parametrize("name", sorted(PINS))
def test_lock_and_manifest_record_the_pinned_version(name: str) -> None:
    entry = LOCK[f"node_modules/{name}"]
    assert entry["version"] == PINS[name] == MANIFEST[name]["version"]
    assert entry["integrity"] == MANIFEST[name]["integrity"]
    assert entry["integrity"].startswith("sha512-")


@pytest.mark.parametrize("name", sorted(PINS))
def test_the_files_on_disk_are_the_ones_recorded(name: str) -> None:
    folder = REPO / MANIFEST[name]["folder"]
    recorded: dict[str, str] = MANIFEST[name]["files"]
    found = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert found == set(recorded), f"{folder} holds other files than vendored.json lists"
    for file, digest in recorded.items():
        assert hashlib.sha256((folder / file).read_bytes()).hexdigest() == digest, file


@pytest.mark.parametrize("name", sorted(PINS))
def test_each_package_comes_with_its_licence(name: str) -> None:
    licence = REPO / MANIFEST[name]["folder"] / "LICENSE"
    assert licence.is_file() and licence.stat().st_size > 500


def test_the_served_packages_are_package_data() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"web/static/vendor/**/*"' in pyproject
    for name in PINS:
        assert MANIFEST[name]["folder"].startswith(("api/web/static/vendor/", "tests/e2e/vendor/"))
