"""deploy/systemd: the units `urbanpulse service install` writes pass `systemd-analyze verify`.

The units are rendered for this checkout with ``--prefix`` (nothing on the machine changes)
and checked by systemd's own verifier, which loads them as systemd would and reports unknown
keys, bad values and missing executables. ``systemd-analyze`` comes from Debian's ``systemd``
package (``deploy/tools/install.sh systemd-analyze`` installs it when the machine lacks it); it
needs no running systemd.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.unit.deploy.support import INSTALL, REPO
from tests.unit.deploy.test_compose import setting_variables
from urbanpulse.service_install import UNITS

SERVICES = [u for u in UNITS if u.endswith(".service")]
URBANPULSE = Path(sys.executable).parent / "urbanpulse"


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail(f"systemd-analyze is not installed: run `{INSTALL} systemd-analyze`")
    return path


def install(prefix: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(URBANPULSE), "service", "install", "--prefix", str(prefix), *extra],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def verify(*units: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [systemd_analyze(), "verify", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


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


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("root")
    result = install(prefix)
    assert result.returncode == 0, result.stderr
    return prefix


def unit_path(prefix: Path, name: str) -> Path:
    return prefix / "etc" / "systemd" / "system" / name


def test_every_unit_passes_systemd_analyze_verify(installed: Path) -> None:
    units = [unit_path(installed, name) for name in UNITS]
    assert all(u.is_file() for u in units)
    result = verify(*units)
    # verify exits 0 on unknown keys and bad values too, and only says so on stderr.
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


def test_verify_reports_what_is_wrong_in_a_unit(installed: Path, tmp_path: Path) -> None:
    """The check above can fail: a misspelt key and a bad limit are reported."""
    broken = tmp_path / "urbanpulse.service"
    text = unit_path(installed, "urbanpulse.service").read_text()
    broken.write_text(text.replace("MemoryMax=2G", "MemoryMax=lots\nRestartSecs=5"))
    result = verify(broken)
    assert "Invalid memory limit 'lots'" in result.stderr
    assert "Unknown key 'RestartSecs'" in result.stderr


def test_no_placeholder_is_left(installed: Path) -> None:
    for path in installed.rglob("*"):
        if path.is_file():
            assert not re.search(r"@[A-Z_]+@", path.read_text()), path


def test_every_service_restarts_runs_unprivileged_and_is_limited(installed: Path) -> None:
    for name in SERVICES:
        unit = parse_unit(unit_path(installed, name))
        service = unit["Service"]
        assert service["Restart"] in (["always"], ["on-failure"]), name
        assert service["RestartSec"], name
        assert service["User"] == ["urbanpulse"] and service["Group"] == ["urbanpulse"], name
        assert service["MemoryMax"], name
        assert service["LimitNOFILE"], name
        assert service["NoNewPrivileges"] == ["yes"], name
        assert service["CapabilityBoundingSet"] == [""], name  # no capabilities at all
        assert service["ProtectSystem"] == ["strict"], name
        assert service["SyslogIdentifier"] == [name.removesuffix(".service")], name
        assert "StandardOutput" not in service, f"{name}: the journal is where logs go"
        assert unit["Unit"]["StartLimitBurst"] and unit["Unit"]["StartLimitIntervalSec"], name
        assert unit["Unit"]["PartOf"] == ["urbanpulse.target"], name
        assert unit["Install"]["WantedBy"] == ["urbanpulse.target"], name


def test_the_target_starts_everything_at_boot(installed: Path) -> None:
    target = parse_unit(unit_path(installed, "urbanpulse.target"))
    assert set(target["Unit"]["Wants"][0].split()) == set(SERVICES)
    assert target["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_platform_waits_for_the_services_without_depending_on_their_restarts(
    installed: Path,
) -> None:
    platform = parse_unit(unit_path(installed, "urbanpulse.service"))
    services = {s for s in SERVICES if s != "urbanpulse.service"}
    assert services <= set(platform["Unit"]["After"][0].split())
    assert services <= set(platform["Unit"]["Wants"][0].split())
    assert "Requires" not in platform["Unit"] and "BindsTo" not in platform["Unit"]
    service = platform["Service"]
    assert service["Type"] == ["notify"] and service["NotifyAccess"] == ["main"]
    assert service["ExecStart"] == [f"{URBANPULSE} up --no-simulate"]
    assert service["KillMode"] == ["mixed"]
    assert service["RuntimeDirectory"] == ["urbanpulse"]


def test_every_setting_the_units_and_settings_file_name_exists(installed: Path) -> None:
    env = installed / "etc" / "urbanpulse" / "urbanpulse.env"
    named = set(re.findall(r"^#? ?(URBANPULSE_\w+)=", env.read_text(), re.M))
    for name in SERVICES:
        named |= set(
            re.findall(r"Environment=(URBANPULSE_\w+)=", unit_path(installed, name).read_text())
        )
    assert "URBANPULSE_MQTT__PASSWORD" in named
    assert named - setting_variables() == set()


def test_the_settings_file_and_accounts_are_private(installed: Path) -> None:
    conf = installed / "etc" / "urbanpulse"
    modes = {p.name: p.stat().st_mode & 0o777 for p in (conf / "mqtt").iterdir()}
    assert modes == {"passwords": 0o640, "acl": 0o640, "secrets.csv": 0o600}
    assert (conf / "urbanpulse.env").stat().st_mode & 0o777 == 0o640
    env = (conf / "urbanpulse.env").read_text()
    password = re.search(r"^URBANPULSE_MQTT__PASSWORD=(\S+)$", env, re.M)
    assert password and password[1] in (conf / "mqtt" / "secrets.csv").read_text()
    assert "urbanpulse-ingest:$7$" in (conf / "mqtt" / "passwords").read_text()


def test_a_second_install_keeps_secrets_and_the_kafka_cluster(tmp_path: Path) -> None:
    assert install(tmp_path).returncode == 0
    conf = tmp_path / "etc" / "urbanpulse"
    kept = ["urbanpulse.env", "kafka-cluster-id", "mqtt/passwords", "mqtt/secrets.csv"]
    before = {name: (conf / name).read_text() for name in kept}
    unit = unit_path(tmp_path, "urbanpulse.service")
    unit.write_text("edited")
    second = install(tmp_path)
    assert second.returncode == 0, second.stderr
    assert {name: (conf / name).read_text() for name in kept} == before
    assert unit.read_text() != "edited"  # units are generated: rewritten every time
    cluster = before["kafka-cluster-id"].strip()
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", cluster)
    assert f"-t {cluster} " in unit_path(tmp_path, "urbanpulse-kafka.service").read_text()


def test_dry_run_writes_nothing_and_says_what_it_would_do(tmp_path: Path) -> None:
    result = install(tmp_path, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []
    assert "would write" in result.stdout and "urbanpulse.service" in result.stdout
    assert "would run useradd --system" in result.stdout
    assert "systemctl enable --now urbanpulse.target" in result.stdout


def test_the_broker_queues_like_the_local_and_compose_brokers(installed: Path) -> None:
    def limits(path: Path) -> dict[str, str]:
        keys = ("max_queued_messages", "max_queued_bytes", "max_inflight_messages")
        pairs = (line.split(None, 1) for line in path.read_text().splitlines() if line.strip())
        return {k: v.strip() for k, v in (p for p in pairs if len(p) == 2) if k in keys}

    vm = limits(installed / "etc" / "urbanpulse" / "mosquitto.conf")
    assert vm == limits(REPO / "deploy" / "local" / "mosquitto.conf") and len(vm) == 3


def test_the_kafka_unit_formats_its_storage_once(installed: Path, tmp_path: Path) -> None:
    """The unit's own ExecStartPre, run against a copy of its config that writes below tmp."""
    unit = parse_unit(unit_path(installed, "urbanpulse-kafka.service"))
    [command] = unit["Service"]["ExecStartPre"]
    config = (installed / "etc" / "urbanpulse" / "kafka.properties").read_text()
    data = tmp_path / "kafka"
    local = tmp_path / "kafka.properties"
    local.write_text(re.sub(r"^log\.dirs=.*$", f"log.dirs={data}", config, flags=re.M))
    argv = command.replace("/etc/urbanpulse/kafka.properties", str(local)).split()
    first = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    cluster = (installed / "etc" / "urbanpulse" / "kafka-cluster-id").read_text().strip()
    assert f"cluster.id={cluster}" in (data / "meta.properties").read_text()
    again = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, "a second start must leave formatted storage alone"
    assert "already formatted" in again.stdout + again.stderr
