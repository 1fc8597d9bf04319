import base64
import hashlib

from urbanpulse.credentials import (
    INGEST_USER,
    acl_file,
    hash_password,
    parse_secrets,
    password_file,
    plan_accounts,
    secrets_csv,
)


def test_hash_is_what_mosquitto_passwd_writes() -> None:
    # From `mosquitto_passwd -c -b pw dev1 secret` (Mosquitto 2.0.11).
    line = (
        "$7$101$IzitxGBc83Sw9GVq$J7tM8PQ78dBdRUMNdOH5KbPBIA6UGejXMol/GvhW8mHSYZOkn9Vn0tV1T0WB"
        "16nXonBHYRl5PTkVIH2cd2h9BA=="
    )
    salt = base64.b64decode("IzitxGBc83Sw9GVq")
    assert hash_password("secret", salt) == line
    assert hashlib.sha512  # the same primitive Mosquitto uses


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
