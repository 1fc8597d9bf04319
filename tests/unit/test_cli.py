"""The ``urbanpulse`` command: which commands it gathers, and that gathering them stays cheap."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import typer

from tests.conftest import REPO
from urbanpulse.cli import app

PARTS = {"ingest", "streams", "api", "simulators", "dashboards"}
# Libraries that only a running command needs; `urbanpulse --help` must not pay for them.
HEAVY = {
    "faust",
    "fastapi",
    "uvicorn",
    "paho",
    "confluent_kafka",
    "aiokafka",
    "influxdb_client",
    "grafana_client",
    "grafana_foundation_sdk",
    "pydantic",
    "pydantic_settings",
    "yaml",
}


def test_commands_are_listed_in_the_documented_order() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## The command line") :].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `urbanpulse ([a-z-]+)` \|", section, re.M)
    group = typer.main.get_group(app)
    assert (
        list(group.commands)
        == documented
        == [
            "up",
            "status",
            "ingest",
            "worker",
            "influx-setup",
            "api",
            "credentials",
            "simulate",
            "kpis",
            "report",
            "dashboards",
            "service",
        ]
    )


def test_importing_the_command_line_loads_no_part_beyond_its_cli_module() -> None:
    """Each part's command imports its machinery when it runs, not when --help is printed."""
    probe = "import json, sys, urbanpulse.cli; print(json.dumps(sorted({m for m in sys.modules})))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = set(json.loads(result.stdout))
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}
    part_modules = {m for m in loaded if m.split(".")[0] in PARTS}
    # the indicator job is a command of its own inside streams/
    expected = PARTS | {f"{part}.cli" for part in PARTS} | {"streams.kpis", "streams.kpis.cli"}
    assert part_modules == expected
