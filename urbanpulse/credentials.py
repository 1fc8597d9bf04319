"""MQTT accounts from the sensor registry: Mosquitto's dynamic security config, password, ACL.

The accounts (each may do only what its kind needs):

* one **device** per registered device, user ``{tenant}/{device}``: publishes only on
  ``urbanpulse/{tenant}/{device}/#``, subscribes to nothing, receives nothing. Channel sensor ids
  of one device (``air-7:1``, ``air-7:2``, see ``ingest/decoders/_common.py``) share its account;
* one **ingest** account per ingestor, named like the ingestor's MQTT client id: receives the
  device topics and the network servers' uplinks and subscribes to them, plainly or in the
  ingestors' shared-subscription group (``$share/{group}/...``);
* **publishers** (a network server's MQTT integration, a bridge, the simulator): publish only on
  the topic filters given, nothing else;
* **monitors** (the broker's health check): read ``$SYS/#`` only.

The same accounts are written three ways: ``dynamic-security.json`` for Mosquitto 2's dynamic
security plugin (what Compose runs: it refuses forbidden subscriptions, ``$share`` included),
``passwords`` + ``acl`` for a plain ``password_file``/``acl_file`` broker (Mosquitto 2.0's
``acl_file`` never checks a SUBSCRIBE: a device may join the ingestors' ``$share`` group, and the
broker then drops that device's share of the readings, see docs/production.md), and
``secrets.csv`` with the plain passwords this module generated. Passwords are kept in that CSV,
so regenerating after a registry change keeps the passwords of existing devices and drops the
accounts of removed ones; passwords given from outside (a Compose secret) are never written.
Hashes are Mosquitto 2's PBKDF2-SHA512 (101 iterations, 12-byte salt), as ``mosquitto_passwd``
and the dynamic security plugin write them.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from urbanpulse.mqtt_topics import INGEST_READS, device_topics

ITERATIONS = 101
SALT_BYTES = 12
INGEST_USER = "urbanpulse-ingest"
DEFAULT_SHARED_GROUP = "ingest"
CHANNEL_SEPARATOR = ":"  # sensor id of a device's channel: f"{device}:{channel}"
BROKER_STATUS = "$SYS/#"
SECRETS_HEADER = ("username", "password")
FORBIDDEN_IN_NAMES = frozenset("/+#")

Kind = Literal["ingest", "monitor", "publisher", "device"]


@dataclass(frozen=True, kw_only=True)
class Account:
    """One MQTT user, its plain password and the topic filters it may use."""

    username: str
    password: str
    kind: Kind
    publishes: tuple[str, ...] = ()
    receives: tuple[str, ...] = ()
    subscribes: tuple[str, ...] = ()
    generated: bool = True  # False: the password came from outside; not written to secrets.csv


@dataclass(frozen=True, kw_only=True)
class Services:
    """The platform's own accounts besides the devices (``urbanpulse credentials`` options)."""

    ingest: tuple[str, ...] = (INGEST_USER,)
    shared_group: str = DEFAULT_SHARED_GROUP
    publishers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    monitors: tuple[str, ...] = ()
    passwords: Mapping[str, str] = field(default_factory=dict)  # given, e.g. from secret files


def device_username(tenant: str, sensor_id: str) -> str:
    """The MQTT user name of a device."""
    return f"{tenant}/{sensor_id}"


def registry_devices(sensors: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The devices that log in, from registry ``(tenant, sensor_id)`` pairs: channels folded."""
    return sorted({(tenant, sid.split(CHANNEL_SEPARATOR, 1)[0]) for tenant, sid in sensors})


def _digest(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS, 64)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str, salt: bytes) -> str:
    """A Mosquitto 2 ``$7$`` password-file hash."""
    return f"$7${ITERATIONS}${_b64(salt)}${_b64(_digest(password, salt))}"


def new_password() -> str:
    """A random password fit for a device's configuration (URL-safe, 128 bits)."""
    return secrets.token_urlsafe(16)


def new_salt() -> bytes:
    """A random salt of the size Mosquitto expects."""
    return secrets.token_bytes(SALT_BYTES)


def ingest_subscriptions(group: str) -> tuple[str, ...]:
    """What an ingest account may subscribe to: its filters, plainly or in its shared group."""
    return (*INGEST_READS, *(f"$share/{group}/{topic}" for topic in INGEST_READS))


def _check_name(name: str) -> str:
    if not name or FORBIDDEN_IN_NAMES & set(name):
        raise ValueError(f"MQTT account or group name {name!r}: non-empty, without / + #")
    return name


@dataclass(frozen=True, kw_only=True)
class _Password:
    value: str
    generated: bool


def _service_accounts(services: Services, password_of: Callable[[str], _Password]) -> list[Account]:
    """The ingest, monitor and publisher accounts."""

    def account(name: str, kind: Kind, **topics: tuple[str, ...]) -> Account:
        password = password_of(name)
        return Account(
            username=name,
            password=password.value,
            generated=password.generated,
            kind=kind,
            **topics,
        )

    subscriptions = ingest_subscriptions(services.shared_group)
    return [
        *(
            account(n, "ingest", receives=INGEST_READS, subscribes=subscriptions)
            for n in services.ingest
        ),
        *(
            account(n, "monitor", receives=(BROKER_STATUS,), subscribes=(BROKER_STATUS,))
            for n in services.monitors
        ),
        *(account(n, "publisher", publishes=topics) for n, topics in services.publishers.items()),
    ]


def plan_accounts(
    devices: Iterable[tuple[str, str]],
    known: dict[str, str],
    make_password: Callable[[], str] = new_password,
    *,
    services: Services | None = None,
) -> list[Account]:
    """The service accounts, then one account per device; known users keep their passwords.

    Raises ``ValueError`` for an account name used twice or containing ``/``, ``+`` or ``#``
    (device names contain ``/``, so no service account can take a device's name).
    """
    services = services or Services()

    def password_of(username: str) -> _Password:
        given = services.passwords.get(username)
        if given is not None:
            return _Password(value=given, generated=False)
        return _Password(value=known.get(username) or make_password(), generated=True)

    _check_name(services.shared_group)
    names = [_check_name(n) for n in (*services.ingest, *services.monitors, *services.publishers)]
    if len(set(names)) != len(names):
        raise ValueError(f"an MQTT account name is used twice: {sorted(names)}")
    accounts = _service_accounts(services, password_of)
    for tenant, device in sorted(set(devices)):
        username = device_username(tenant, device)
        password = password_of(username)
        accounts.append(
            Account(
                username=username,
                password=password.value,
                generated=password.generated,
                kind="device",
                publishes=(device_topics(tenant, device),),
            )
        )
    return accounts


def password_file(accounts: Iterable[Account], salt: Callable[[], bytes] = new_salt) -> str:
    """The Mosquitto ``password_file`` text."""
    return "".join(f"{a.username}:{hash_password(a.password, salt())}\n" for a in accounts)


def acl_file(accounts: Iterable[Account]) -> str:
    """The Mosquitto ``acl_file`` text: each user may publish and receive only its own topics.

    Mosquitto 2.0 does not check subscriptions against this file: prefer
    :func:`dynamic_security`.
    """
    lines = [
        "# Generated by `urbanpulse credentials` from the sensor registry; do not edit.",
        "# Mosquitto 2.0 never checks a SUBSCRIBE against an acl_file (any user may join the",
        "# ingestors' $share group): use dynamic-security.json where you can.",
    ]
    for account in accounts:
        lines += ["", f"user {account.username}"]
        lines += [f"topic write {topic}" for topic in account.publishes]
        lines += [f"topic read {topic}" for topic in account.receives]
    return "\n".join(lines) + "\n"


def _acls(account: Account) -> list[dict[str, Any]]:
    kinds = (
        ("publishClientSend", account.publishes),
        ("publishClientReceive", account.receives),
        ("subscribePattern", account.subscribes),
    )
    return [
        {"acltype": acltype, "topic": topic, "allow": True}
        for acltype, topics in kinds
        for topic in topics
    ]


def dynamic_security(accounts: Iterable[Account], salt: Callable[[], bytes] = new_salt) -> str:
    """The config file of Mosquitto 2's dynamic security plugin: one role per account.

    Everything not granted is refused (publish, receive, subscribe); unsubscribing is harmless
    and stays allowed. No account may use ``$CONTROL``, so nobody can change the file through
    the broker: it changes only by running ``urbanpulse credentials`` again.
    """
    clients, roles = [], []
    for account in accounts:
        rolename = f"{account.kind}:{account.username}"
        roles.append({"rolename": rolename, "acls": _acls(account)})
        salted = salt()
        clients.append(
            {
                "username": account.username,
                "textname": account.kind,
                "password": _b64(_digest(account.password, salted)),
                "salt": _b64(salted),
                "iterations": ITERATIONS,
                "roles": [{"rolename": rolename}],
            }
        )
    config = {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": clients,
        "groups": [],
        "roles": roles,
    }
    return json.dumps(config, indent=2) + "\n"


def secrets_csv(accounts: Iterable[Account]) -> str:
    """The generated plain passwords, to hand to each device (keep this file private)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SECRETS_HEADER)
    writer.writerows((a.username, a.password) for a in accounts if a.generated)
    return buffer.getvalue()


def parse_secrets(text: str) -> dict[str, str]:
    """Read a secrets CSV written by :func:`secrets_csv`."""
    rows = csv.DictReader(io.StringIO(text))
    return {row["username"]: row["password"] for row in rows if row.get("username")}


def credential_files(
    devices: Iterable[tuple[str, str]],
    known_secrets: str = "",
    *,
    services: Services | None = None,
) -> dict[str, str]:
    """The files by name: ``dynamic-security.json``, ``passwords``, ``acl``, ``secrets.csv``."""
    known = parse_secrets(known_secrets) if known_secrets else {}
    accounts = plan_accounts(devices, known, services=services)
    return {
        "dynamic-security.json": dynamic_security(accounts),
        "passwords": password_file(accounts),
        "acl": acl_file(accounts),
        "secrets.csv": secrets_csv(accounts),
    }
