import base64
import csv
import hashlib
import io
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from urbanpulse.cli import app
from urbanpulse.credentials import (
    INGEST_USER,
    Services,
    acl_file,
    credential_files,
    dynamic_security,
    hash_password,
    parse_secrets,
    password_file,
    plan_accounts,
    registry_devices,
    secrets_csv,
)

SERVICES = Services(
    ingest=("urbanpulse-ingest-1", "urbanpulse-ingest-2"),
    shared_group="ingest",
    publishers={"chirpstack": ("application/app-1/device/+/event/up",)},
    monitors=("urbanpulse-healthcheck",),
    passwords={"urbanpulse-ingest-1": "given", "urbanpulse-ingest-2": "given"},
)


def test_hash_is_what_mosquitto_passwd_writes() -> None:
    # From `mosquitto_passwd -c -b pw dev1 secret` (Mosquitto 2.0.11).
    line = (
        "$7$101$IzitxGBc83Sw9GVq$J7tM8PQ78dBdRUMNdOH5KbPBIA6UGejXMol/GvhW8mHSYZOkn9Vn0tV1T0WB"
        "16nXonBHYRl5PTkVIH2cd2h9BA=="
    )
    salt = base64.b64decode("IzitxGBc83Sw9GVq")
    assert hash_password("secret", salt) == line


def test_known_devices_keep_their_passwords_and_removed_ones_go() -> None:
    known = {"town/a": "pa", "town/gone": "pg", INGEST_USER: "pi"}
    accounts = plan_accounts([("town", "a"), ("town", "b")], known, make_password=lambda: "new")
    passwords = {a.username: a.password for a in accounts}
    assert passwords == {INGEST_USER: "pi", "town/a": "pa", "town/b": "new"}


def test_each_device_writes_only_its_own_topics() -> None:
    accounts = plan_accounts([("town", "a")], {}, make_password=lambda: "x")
    text = acl_file(accounts)
    assert "user town/a\ntopic write urbanpulse/town/a/#\n" in text
    assert f"user {INGEST_USER}\ntopic read urbanpulse/#" in text
    assert "topic write urbanpulse/#" not in text


def test_files_round_trip() -> None:
    accounts = plan_accounts([("town", "a")], {}, make_password=lambda: 'p,w"1')
    assert parse_secrets(secrets_csv(accounts)) == {a.username: a.password for a in accounts}
    lines = password_file(accounts, salt=lambda: b"0" * 12).splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [INGEST_USER, "town/a"]


def test_channels_of_one_device_share_its_account() -> None:
    sensors = [("town", "lpp-1:1"), ("town", "lpp-1:2"), ("town", "air-1"), ("city", "air-1")]
    assert registry_devices(sensors) == [("city", "air-1"), ("town", "air-1"), ("town", "lpp-1")]


def acls_by_user(config: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    """Each user's granted (acltype, topic) pairs, through its roles."""
    roles = {r["rolename"]: r["acls"] for r in config["roles"]}
    granted: dict[str, set[tuple[str, str]]] = {}
    for client in config["clients"]:
        for role in client["roles"]:
            for acl in roles[role["rolename"]]:
                assert acl["allow"] is True  # only grants: everything else is refused
                granted.setdefault(client["username"], set()).add((acl["acltype"], acl["topic"]))
    return granted


def test_dynamic_security_grants_each_account_only_its_own_use() -> None:
    accounts = plan_accounts([("town", "a")], {}, make_password=lambda: "x", services=SERVICES)
    config = json.loads(dynamic_security(accounts))
    assert config["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }
    granted = acls_by_user(config)
    assert granted["town/a"] == {("publishClientSend", "urbanpulse/town/a/#")}
    assert granted["chirpstack"] == {("publishClientSend", "application/app-1/device/+/event/up")}
    assert granted["urbanpulse-healthcheck"] == {
        ("publishClientReceive", "$SYS/#"),
        ("subscribePattern", "$SYS/#"),
    }
    ingest = granted["urbanpulse-ingest-1"]
    assert ("subscribePattern", "$share/ingest/urbanpulse/#") in ingest
    assert ("subscribePattern", "$share/ingest/application/+/device/+/event/up") in ingest
    assert ("publishClientReceive", "v3/+/devices/+/up") in ingest
    assert not any(kind == "publishClientSend" for kind, _ in ingest)
    assert granted["urbanpulse-ingest-2"] == ingest
    assert not any(topic.startswith("$CONTROL") for acls in granted.values() for _, topic in acls)


def test_dynamic_security_hashes_are_what_the_plugin_checks() -> None:
    # The plugin hashes the password with the stored salt and iterations (PBKDF2-SHA512, 64 bytes)
    # and compares with the stored hash; the real plugin accepts them in the integration tests.
    accounts = plan_accounts([("town", "a")], {}, make_password=lambda: "pa")
    [_, device] = json.loads(dynamic_security(accounts))["clients"]
    salt = base64.b64decode(device["salt"])
    assert len(salt) == 12 and device["iterations"] == 101
    digest = hashlib.pbkdf2_hmac("sha512", b"pa", salt, 101, 64)
    assert base64.b64decode(device["password"]) == digest


def test_given_passwords_are_used_and_never_written_to_the_secrets() -> None:
    files = credential_files([("town", "a")], services=SERVICES)
    written = parse_secrets(files["secrets.csv"])
    assert set(written) == {"urbanpulse-healthcheck", "chirpstack", "town/a"}
    clients = json.loads(files["dynamic-security.json"])["clients"]
    ingest = next(c for c in clients if c["username"] == "urbanpulse-ingest-1")
    salt = base64.b64decode(ingest["salt"])
    assert base64.b64decode(ingest["password"]) == hashlib.pbkdf2_hmac(
        "sha512", b"given", salt, 101, 64
    )


@pytest.mark.parametrize(
    "services",
    [
        Services(ingest=("town/a",)),  # would take a device's name
        Services(publishers={"a+b": ("x",)}),
        Services(ingest=("same",), monitors=("same",)),
        Services(shared_group="in/gest"),
    ],
)
def test_bad_or_clashing_account_names_are_refused(services: Services) -> None:
    with pytest.raises(ValueError, match="MQTT account"):
        plan_accounts([("town", "a")], {}, services=services)


def test_cli_writes_the_broker_files_and_keeps_passwords(tmp_path: Path) -> None:
    registry = tmp_path / "registry.csv"
    registry.write_text("tenant,sensor_id\ntown,air-1\ntown,lpp-1:1\ntown,lpp-1:2\n")
    secret = tmp_path / "mqtt_password"
    secret.write_text("service-secret\n")
    args = [
        "credentials",
        "--registry",
        str(registry),
        "--out",
        str(tmp_path / "broker"),
        "--secrets",
        str(tmp_path / "private" / "secrets.csv"),
        "--ingest",
        "urbanpulse-ingest-1",
        "--publisher",
        "sim=urbanpulse/town/#",
        "--publisher",
        "sim=v3/+/devices/+/up",
        "--password-file",
        f"urbanpulse-ingest-1={secret}",
    ]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    broker = tmp_path / "broker"
    assert sorted(p.name for p in broker.iterdir()) == ["acl", "dynamic-security.json", "passwords"]
    secrets = tmp_path / "private" / "secrets.csv"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert stat.S_IMODE((broker / "dynamic-security.json").stat().st_mode) == 0o644
    rows = list(csv.reader(io.StringIO(secrets.read_text())))
    assert {r[0] for r in rows[1:]} == {"sim", "town/air-1", "town/lpp-1"}
    granted = acls_by_user(json.loads((broker / "dynamic-security.json").read_text()))
    assert granted["sim"] == {
        ("publishClientSend", "urbanpulse/town/#"),
        ("publishClientSend", "v3/+/devices/+/up"),
    }
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert secrets.read_text() == "\n".join(",".join(r) for r in rows) + "\n"


@pytest.mark.parametrize(
    "bad", [["--publisher", "no-equals-sign"], ["--password-file", "x=/nonexistent/file"]]
)
def test_cli_refuses_bad_options_by_name(tmp_path: Path, bad: list[str]) -> None:
    result = CliRunner().invoke(app, ["credentials", "--out", str(tmp_path), *bad])
    assert result.exit_code == 2, result.output
    assert bad[0] in result.output


@pytest.mark.parametrize(
    ("content", "said"),
    [(b"tenant,sensor_id\n\xff\xfe,x\n", "not UTF-8"), (b"- [unclosed", "expected")],
)
def test_cli_says_what_is_wrong_with_the_registry(
    tmp_path: Path, content: bytes, said: str
) -> None:
    registry = tmp_path / ("registry.csv" if b"tenant" in content else "registry.yaml")
    registry.write_bytes(content)
    out = tmp_path / "broker"
    result = CliRunner().invoke(
        app, ["credentials", "--out", str(out), "--registry", str(registry)]
    )
    assert result.exit_code == 2, result.output
    assert "--registry" in result.output and said in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
