"""The single-VM installation rendered below a prefix (`urbanpulse service install --prefix`),
and its unit files read back: shared by the unit checks and the integration tests that run
what the installation wrote (the Kafka unit's storage formatting, the broker's accounts)."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from tests.unit.deploy.support import REPO

URBANPULSE = Path(sys.executable).parent / "urbanpulse"
# A small registry: two devices, one with two channels (one account), in one tenant.
REGISTRY = "tenant,sensor_id\ntown,a\ntown,b\ntown,lpp-1:1\ntown,lpp-1:2\n"
DEVICES = ("town/a", "town/b", "town/lpp-1")


def install(prefix: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run `urbanpulse service install --prefix PREFIX ...` as an operator would."""
    return subprocess.run(
        [str(URBANPULSE), "service", "install", "--prefix", str(prefix), *extra],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def install_with_registry(prefix: Path) -> Path:
    """Install below ``prefix`` with :data:`REGISTRY` (written beside it); the prefix."""
    registry = prefix.parent / f"{prefix.name}-registry.csv"
    registry.write_text(REGISTRY)
    result = install(prefix, "--registry", str(registry))
    assert result.returncode == 0, result.stderr
    return prefix


def conf_dir(prefix: Path) -> Path:
    """The installation's /etc/urbanpulse."""
    return prefix / "etc" / "urbanpulse"


def unit_path(prefix: Path, name: str) -> Path:
    """Where the installation wrote a unit."""
    return prefix / "etc" / "systemd" / "system" / name


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value (keys like Environment= may repeat)."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = ""
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        sections[section][key.strip()].append(value.strip())
    return sections
