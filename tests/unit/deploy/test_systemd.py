"""deploy/systemd: the units `urbanpulse service install` writes pass `systemd-analyze verify`.

The units are rendered for this checkout with ``--prefix`` (nothing on the machine changes)
and checked by systemd's own verifier, which loads them as systemd would and reports unknown
keys, bad values and missing executables. ``systemd-analyze`` comes from Debian's ``systemd``
package (``deploy/tools/install.sh systemd-analyze`` installs it when the machine lacks it); it
needs no running systemd.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy.single_vm import (
    DEVICES,
    REGISTRY,
    URBANPULSE,
    conf_dir,
    install,
    install_with_registry,
    parse_unit,
    unit_path,
)
from tests.unit.deploy.support import DEPLOY, INSTALL, REPO
from tests.unit.deploy.test_compose import setting_variables
from urbanpulse.credentials import INGEST_USER, parse_secrets
from urbanpulse.service_install import (
    UNITS,
    default_options,
    env_value,
    known_passwords,
    plan,
    write_files,
)

SERVICES = [u for u in UNITS if u.endswith(".service")]


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail(f"systemd-analyze is not installed: run `{INSTALL} systemd-analyze`")
    return path


def verify(*units: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [systemd_analyze(), "verify", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_with_registry(tmp_path_factory.mktemp("root") / "root")


def broker_accounts(conf: Path) -> dict[str, dict[str, Any]]:
    """The dynamic security plugin's clients by user name, each with its role's ACLs."""
    config = json.loads((conf / "mqtt" / "dynamic-security.json").read_text())
    roles = {role["rolename"]: role["acls"] for role in config["roles"]}
    return {
        client["username"]: client | {"acls": roles[client["roles"][0]["rolename"]]}
        for client in config["clients"]
    }


def accepts(account: dict[str, Any], password: str) -> bool:
    """Whether the plugin lets this password in: its PBKDF2-SHA512 hash, as Mosquitto checks."""
    salt = base64.b64decode(account["salt"])
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, account["iterations"], 64)
    return base64.b64encode(digest).decode() == account["password"]


def options_of(conf_text: str) -> dict[str, str]:
    """A Mosquitto config's options (the last value of each), comments left out."""
    pairs = (line.split(None, 1) for line in conf_text.splitlines() if line.strip())
    return {p[0]: p[1].strip() for p in pairs if len(p) == 2 and not p[0].startswith("#")}


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
    conf = conf_dir(installed)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (conf / "mqtt").iterdir()}
    assert modes == {"dynamic-security.json": 0o640, "secrets.csv": 0o600}
    assert (conf / "urbanpulse.env").stat().st_mode & 0o777 == 0o640
    env = (conf / "urbanpulse.env").read_text()
    password = env_value(env, "URBANPULSE_MQTT__PASSWORD")
    secrets = parse_secrets((conf / "mqtt" / "secrets.csv").read_text())
    assert set(secrets) == {INGEST_USER, *DEVICES} and secrets[INGEST_USER] == password
    accounts = broker_accounts(conf)
    assert accepts(accounts[INGEST_USER], password) and not accepts(accounts[INGEST_USER], "x")
    assert password not in (conf / "mqtt" / "dynamic-security.json").read_text()


def test_each_device_of_the_registry_may_publish_on_its_own_topics_only(installed: Path) -> None:
    conf = conf_dir(installed)
    secrets = parse_secrets((conf / "mqtt" / "secrets.csv").read_text())
    accounts = broker_accounts(conf)
    assert set(accounts) == {INGEST_USER, *DEVICES}  # the channels lpp-1:1, lpp-1:2: one account
    for device in DEVICES:
        assert accepts(accounts[device], secrets[device])
        assert accounts[device]["acls"] == [
            {"acltype": "publishClientSend", "topic": f"urbanpulse/{device}/#", "allow": True}
        ]
    ingest = {(a["acltype"], a["topic"]) for a in accounts[INGEST_USER]["acls"]}
    assert ("subscribePattern", "$share/ingest/urbanpulse/#") in ingest
    assert not any(kind == "publishClientSend" for kind, _ in ingest)


def test_the_broker_enforces_accounts_as_compose_does(installed: Path) -> None:
    """The dynamic security plugin of this machine's Mosquitto and client id = user name; no
    acl_file, which Mosquitto 2.0 never checks a SUBSCRIBE against."""
    vm = options_of((conf_dir(installed) / "mosquitto.conf").read_text())
    compose = options_of((DEPLOY / "compose" / "mosquitto" / "mosquitto.conf").read_text())
    same = ("allow_anonymous", "use_username_as_clientid", "max_packet_size", "message_size_limit")
    assert {k: vm[k] for k in same} == {k: compose[k] for k in same}
    assert vm["use_username_as_clientid"] == "true" and vm["allow_anonymous"] == "false"
    assert "acl_file" not in vm and "password_file" not in vm
    assert vm["plugin_opt_config_file"] == "/etc/urbanpulse/mqtt/dynamic-security.json"
    plugin = Path(vm["plugin"])
    assert plugin.name == "mosquitto_dynamic_security.so" and plugin.is_file()
    listed = subprocess.run(["dpkg", "-L", "mosquitto"], capture_output=True, text=True)
    assert str(plugin) in listed.stdout.splitlines()  # the one Debian's package ships


def test_a_second_install_keeps_secrets_and_the_kafka_cluster(tmp_path: Path) -> None:
    assert install(tmp_path).returncode == 0
    conf = conf_dir(tmp_path)
    kept = ["urbanpulse.env", "kafka-cluster-id", "mqtt/secrets.csv"]
    before = {name: (conf / name).read_text() for name in kept}
    unit = unit_path(tmp_path, "urbanpulse.service")
    unit.write_text("edited")
    second = install(tmp_path)
    assert second.returncode == 0, second.stderr
    assert {name: (conf / name).read_text() for name in kept} == before
    assert unit.read_text() != "edited"  # units are generated: rewritten every time
    password = env_value(before["urbanpulse.env"], "URBANPULSE_MQTT__PASSWORD")
    assert password and accepts(broker_accounts(conf)[INGEST_USER], password)
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


def test_the_registry_of_the_settings_file_makes_the_accounts_and_passwords_stay(
    tmp_path: Path,
) -> None:
    """A later run without --registry takes the one the settings file names (a path on the
    target), adds and removes device accounts, and keeps every known password."""
    options = default_options()
    write_files(plan(options, existing=tmp_path).files, tmp_path)
    conf = conf_dir(tmp_path)
    assert set(broker_accounts(conf)) == {INGEST_USER}  # no registry yet: the platform's only
    first = parse_secrets((conf / "mqtt" / "secrets.csv").read_text())
    env = conf / "urbanpulse.env"
    env.write_text(env.read_text() + "URBANPULSE_STREAMS__REGISTRY_PATH=/etc/urbanpulse/r.csv\n")
    (conf / "r.csv").write_text(REGISTRY)
    write_files(plan(options, existing=tmp_path).files, tmp_path)
    second = parse_secrets((conf / "mqtt" / "secrets.csv").read_text())
    assert set(broker_accounts(conf)) == {INGEST_USER, *DEVICES}
    assert second[INGEST_USER] == first[INGEST_USER]
    (conf / "r.csv").write_text("tenant,sensor_id\ntown,a\n")  # b and lpp-1 removed
    write_files(plan(options, existing=tmp_path).files, tmp_path)
    third = parse_secrets((conf / "mqtt" / "secrets.csv").read_text())
    assert set(broker_accounts(conf)) == {INGEST_USER, "town/a"}
    assert third == {INGEST_USER: first[INGEST_USER], "town/a": second["town/a"]}


def test_a_registry_that_cannot_be_read_stops_the_install_and_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "registry.yaml"
    bad.write_text("sensors: {not: a list}\n")
    result = install(tmp_path / "root", "--registry", str(bad))
    assert result.returncode != 0
    assert "registry.yaml" in result.stderr and "a YAML registry is a list" in result.stderr
    assert not (tmp_path / "root").exists()  # nothing written


def test_the_platform_keeps_the_password_of_its_settings_file() -> None:
    """The settings file is what the platform logs in with: it wins over the secrets CSV."""
    env = "# URBANPULSE_MQTT__PASSWORD=old\nURBANPULSE_MQTT__PASSWORD= s3cret \n"
    assert env_value(env, "URBANPULSE_MQTT__PASSWORD") == "s3cret"  # commented lines are not
    assert env_value(env, "URBANPULSE_MQTT__USERNAME") is None
    secrets = f"username,password\n{INGEST_USER},csv\ntown/a,pw-a\n"
    assert known_passwords(secrets, env) == {INGEST_USER: "s3cret", "town/a": "pw-a"}
    assert known_passwords(secrets, None) == {INGEST_USER: "csv", "town/a": "pw-a"}
    assert known_passwords(None, None) == {}
