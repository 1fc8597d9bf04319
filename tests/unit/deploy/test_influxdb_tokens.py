"""The InfluxDB token script (compose/influxdb/create-tokens.sh) against a stand-in of ``influx``.

A contract test: InfluxDB 2.x cannot run on our machines (we run 1.8, which has no tokens), so
the real CLI and server are replaced by ``FAKE_INFLUX`` below: it answers ``influx bucket list``
and ``influx auth create`` the way influx CLI 2.7 prints them (read in influx-cli v2.7.5:
``clients/cli.go`` PrintJSON indents with tabs; ``pkg/tabwriter`` pads table columns with tabs,
ID first), keeps the tokens it made with their permissions, and accepts a token only where its
permissions allow. What this shows: which permissions each token is asked for, what reaches
which file, and that tokens are kept or replaced as the script says. What it cannot show: that
InfluxDB 2.7 grants and enforces those permissions; nothing here has run against a real InfluxDB
2.x.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy.support import DEPLOY

SCRIPT = DEPLOY / "compose" / "influxdb" / "create-tokens.sh"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
BUCKETS = {"urbanpulse-raw": "0a1b2c3d4e5f6071", "urbanpulse-agg": "1a2b3c4d5e6f7081"}
RAW, AGG = BUCKETS.values()

FAKE_INFLUX = r'''
"""Stand-in for influx CLI 2.7: bucket list and auth create (see the test module)."""
import json, os, sys

path = os.environ["FAKE_INFLUX_STATE"]
state = json.load(open(path))
args, token = sys.argv[1:], os.environ.get("INFLUX_TOKEN", "")
state["calls"].append({"args": args, "token": token})


def values(flag):
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def done(code, text="", error=""):
    json.dump(state, open(path, "w"))
    sys.stdout.write(text)
    sys.stderr.write(error)
    sys.exit(code)


assert os.environ.get("INFLUX_HOST") and os.environ.get("INFLUX_ORG"), "no host or org"
perms = state["tokens"].get(token)
if perms is None:
    done(1, error="Error: failed to list buckets: 401 Unauthorized: unauthorized access\n")
if args[:2] == ["bucket", "list"]:
    [name] = values("--name")
    bucket = state["buckets"].get(name)
    if bucket is None:
        done(1, error=f'Error: bucket "{name}" not found\n')
    if perms != "operator" and f"read:{bucket}" not in perms:
        done(0)  # InfluxDB lists only the buckets a token may read
    assert "--hide-headers" in args
    done(0, f"{bucket}\t{name}\t720h0m0s\t24h0m0s\t00000000000000aa\timplicit\n")
if args[:2] == ["auth", "create"]:
    if perms != "operator":
        done(1, error="Error: could not write auth: 403 Forbidden\n")
    assert values("--user") == [state["admin"]] and "--json" in args
    granted = [f"read:{b}" for b in values("--read-bucket")]
    granted += [f"write:{b}" for b in values("--write-bucket")]
    granted += ["read:orgs"] if "--read-orgs" in args else []
    new = f"token-{len(state['tokens'])}=="
    state["tokens"][new] = granted
    answer = {"id": "0b0b", "description": values("--description")[0], "token": new,
              "status": "active", "userName": state["admin"], "userID": "0c0c",
              "permissions": granted}
    done(0, json.dumps(answer, indent="\t") + "\n")
done(2, error=f"the stand-in does not know: {args}\n")
'''


def compose_environment() -> dict[str, str]:
    """The environment compose.yaml gives influxdb-tokens, with .env.example's values."""
    service = yaml.safe_load(COMPOSE.read_text())["services"]["influxdb-tokens"]
    values = {
        "${URBANPULSE_INFLUX__ORG}": "urbanpulse",
        "${INFLUXDB_ADMIN_USER:-admin}": "admin",
        "${URBANPULSE_INFLUX__RAW_BUCKET}": "urbanpulse-raw",
        "${URBANPULSE_INFLUX__AGGREGATE_BUCKET}": "urbanpulse-agg",
    }
    return {k: values.get(str(v), str(v)) for k, v in service["environment"].items()}


class Installation:
    """A tmp dir standing in for the container: the stand-in CLI, the secret, the volumes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "influx-state.json"
        (root / "bin").mkdir()
        fake = root / "bin" / "influx"
        # this test's own interpreter: `#!/usr/bin/env python3` may find a version manager's
        # shim (pyenv's: 0.25 s a start instead of 0.05 s), and the script calls it often
        fake.write_text(f"#!{sys.executable}{FAKE_INFLUX}")
        fake.chmod(0o755)
        (root / "operator_token").write_text("the-operator-token")
        for volume in ("read", "write"):
            (root / "tokens" / volume).mkdir(parents=True)
        operator = {"the-operator-token": "operator"}
        self.save({"admin": "admin", "buckets": dict(BUCKETS), "tokens": operator, "calls": []})

    def load(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.state.read_text())
        return loaded

    def save(self, state: dict[str, Any]) -> None:
        self.state.write_text(json.dumps(state))

    def run(self) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.root / 'bin'}:{os.environ['PATH']}",
            "FAKE_INFLUX_STATE": str(self.state),
            "OPERATOR_TOKEN_FILE": str(self.root / "operator_token"),
            "TOKENS_DIR": str(self.root / "tokens"),
            **compose_environment(),
        }
        return subprocess.run(
            ["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    def token(self, volume: str) -> str:
        return (self.root / "tokens" / volume / "token").read_text()

    def created(self) -> int:
        return sum(call["args"][:2] == ["auth", "create"] for call in self.load()["calls"])


@pytest.fixture
def installation(tmp_path: Path) -> Installation:
    return Installation(tmp_path)


def test_the_api_and_grafana_get_a_read_only_token_the_worker_a_bucket_writer(
    installation: Installation,
) -> None:
    result = installation.run()
    assert result.returncode == 0, result.stderr
    tokens = installation.load()["tokens"]
    read, write = installation.token("read"), installation.token("write")
    assert sorted(tokens[read]) == sorted([f"read:{RAW}", f"read:{AGG}"])
    assert sorted(tokens[write]) == sorted(
        [f"read:{RAW}", f"read:{AGG}", f"write:{RAW}", f"write:{AGG}", "read:orgs"]
    )
    for volume in ("read", "write"):
        path = installation.root / "tokens" / volume / "token"
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
        assert "\n" not in path.read_text()
    # Only the operator token made them; it is written nowhere.
    creators = {c["token"] for c in installation.load()["calls"] if c["args"][0] == "auth"}
    assert creators == {"the-operator-token"}
    assert "the-operator-token" not in read + write


def test_a_second_run_keeps_the_tokens(installation: Installation) -> None:
    assert installation.run().returncode == 0
    before = (installation.token("read"), installation.token("write"))
    result = installation.run()
    assert result.returncode == 0, result.stderr
    assert (installation.token("read"), installation.token("write")) == before
    assert installation.created() == 2
    assert "keeping the read-only InfluxDB token" in result.stdout


def test_a_token_deleted_in_influxdb_is_replaced(installation: Installation) -> None:
    assert installation.run().returncode == 0
    old_read, old_write = installation.token("read"), installation.token("write")
    state = installation.load()
    del state["tokens"][old_read]  # deleted in the InfluxDB UI, to rotate it
    installation.save(state)
    result = installation.run()
    assert result.returncode == 0, result.stderr
    assert installation.token("read") != old_read
    assert installation.token("write") == old_write
    assert installation.created() == 3


def test_a_missing_bucket_fails_and_writes_no_token(installation: Installation) -> None:
    state = installation.load()
    del state["buckets"]["urbanpulse-agg"]
    installation.save(state)
    result = installation.run()
    assert result.returncode == 1
    assert "no bucket" in result.stderr
    assert not list((installation.root / "tokens").glob("*/token"))


def test_compose_gives_the_script_what_it_reads() -> None:
    service = yaml.safe_load(COMPOSE.read_text())["services"]["influxdb-tokens"]
    script = SCRIPT.read_text()
    used = ("INFLUX_ADMIN_USER", "URBANPULSE_RAW_BUCKET", "URBANPULSE_AGGREGATE_BUCKET")
    for name in used:
        assert name in service["environment"] and f"${name}" in script, name
    for name in ("INFLUX_HOST", "INFLUX_ORG"):  # the influx CLI reads these itself
        assert name in service["environment"], name
    assert "/run/secrets/influxdb_operator_token" in script
    assert service["secrets"] == ["influxdb_operator_token"]
    mounts = {m.split(":")[1] for m in service["volumes"]}
    assert {"/tokens/read", "/tokens/write"} <= mounts and "TOKENS_DIR:-/tokens}" in script
