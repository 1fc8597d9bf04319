"""``urbanpulse service install``: UrbanPulse as systemd services on one Linux VM.

Renders the unit files of ``deploy/systemd/`` (the services Mosquitto, Kafka and InfluxDB, the
platform ``urbanpulse.service`` and ``urbanpulse.target``) with this checkout's paths, the
services' configuration files into ``/etc/urbanpulse``, the platform's settings file (only when
missing: a second run keeps the operator's edits), the broker's MQTT accounts from the sensor
registry (every run, keeping every known password), and journald's rotation settings; creates
the unprivileged user; reloads systemd. ``--prefix`` writes everything below a folder instead
and changes nothing on the system (tests, packaging); ``--dry-run`` only says what it would do.
docs/production.md, "Single VM", is the operator's guide.

The broker's accounts are Compose's: Mosquitto 2's dynamic security plugin with the file
``urbanpulse.credentials`` writes, and ``use_username_as_clientid`` (``deploy/systemd/
mosquitto.conf`` says why not ``acl_file``).
"""

from __future__ import annotations

import base64
import glob
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

UNITS = (
    "urbanpulse.target",
    "urbanpulse.service",
    "urbanpulse-mosquitto.service",
    "urbanpulse-kafka.service",
    "urbanpulse-influxdb.service",
)
MQTT_DIR = "mqtt"  # below the configuration folder: dynamic-security.json, secrets.csv
PLACEHOLDER = re.compile(r"@([A-Z][A-Z_]*)@")
# Where Debian's mosquitto package (2.0 and newer) puts the dynamic security plugin.
DYNAMIC_SECURITY_PLUGINS = (
    "/usr/lib/*/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
)
PASSWORD_SETTING = "URBANPULSE_MQTT__PASSWORD"
REGISTRY_SETTING = "URBANPULSE_STREAMS__REGISTRY_PATH"


@dataclass(frozen=True, kw_only=True)
class InstallOptions:
    """Where things are on the target machine, and who runs them."""

    repo: Path
    venv_bin: Path
    services_home: Path
    user: str = "urbanpulse"
    conf_dir: Path = Path("/etc/urbanpulse")
    unit_dir: Path = Path("/etc/systemd/system")
    journald_dir: Path = Path("/etc/systemd/journald.conf.d")
    state_dir: Path = Path("/var/lib/urbanpulse")
    java: str = "/usr/bin/java"
    mosquitto: str = "/usr/sbin/mosquitto"
    mosquitto_plugin: str = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"


@dataclass(frozen=True, kw_only=True)
class PlannedFile:
    """One file to write: its path on the target, text, mode, and whether it holds a secret."""

    path: Path
    text: str
    mode: int = 0o644
    secret: bool = False  # owned root:<user>, mode 0640: readable by the services only
    keep: bool = False  # written only when missing: it holds secrets or the operator's edits


@dataclass(kw_only=True)
class InstallPlan:
    """Every file and command of an installation."""

    files: list[PlannedFile] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)


def default_options(user: str = "urbanpulse") -> InstallOptions:
    """The options for this checkout: its repo, its virtualenv, its ``.local`` services."""
    repo = Path(__file__).resolve().parent.parent
    home = Path(os.environ.get("URBANPULSE_HOME", repo / ".local")).resolve()
    return InstallOptions(
        repo=repo,
        venv_bin=Path(sys.executable).parent,
        services_home=home,
        user=user,
        java=shutil.which("java") or "/usr/bin/java",
        mosquitto=shutil.which("mosquitto") or "/usr/sbin/mosquitto",
        mosquitto_plugin=dynamic_security_plugin() or InstallOptions.mosquitto_plugin,
    )


def dynamic_security_plugin() -> str | None:
    """The dynamic security plugin of the installed Mosquitto, if there is one."""
    found = sorted(path for pattern in DYNAMIC_SECURITY_PLUGINS for path in glob.glob(pattern))
    return found[0] if found else None


def missing_parts(options: InstallOptions) -> list[str]:
    """What the units need but is not there, each with how to get it."""
    needs = {
        options.venv_bin / "urbanpulse": "the virtualenv: run `make install` in the checkout",
        options.services_home / "bin" / "influxd": "InfluxDB: run `make install`",
        options.services_home / "kafka" / "lib": "Kafka's jars: run `make install`",
        Path(options.java): "Java 17: apt-get install openjdk-17-jre-headless",
        Path(options.mosquitto): "Mosquitto: apt-get install mosquitto",
        Path(options.mosquitto_plugin): "Mosquitto 2's dynamic security plugin: "
        "apt-get install mosquitto (2.0 or newer)",
    }
    needs[options.repo / "deploy" / "systemd"] = (
        "the unit templates: run this command from the checkout's virtualenv (`make install`)"
    )
    found = [f"{path} ({how})" for path, how in needs.items() if not path.exists()]
    if shutil.which("curl") is None:
        found.append("curl (apt-get install curl): the InfluxDB unit creates its database with it")
    for path in (options.repo, options.venv_bin):
        if path.is_relative_to("/home") or path.is_relative_to("/root"):
            found.append(
                f"{path} is under /home or /root, which the services cannot read "
                "(ProtectHome=yes): clone to e.g. /opt/urbanpulse and run `make install` there"
            )
    return found


def kafka_cluster_id() -> str:
    """A new Kafka cluster id as Kafka writes them: a UUID, base64url without padding."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):  # Kafka's own random ids never start with '-'
            return text


def render(template: str, values: dict[str, str]) -> str:
    """Replace every ``@NAME@`` of a template; refuse one left without a value."""
    text = PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), template)
    unknown = sorted(set(PLACEHOLDER.findall(text)))
    if unknown:
        raise ValueError(f"template placeholders without a value: {unknown}")
    return text


def plan(
    options: InstallOptions, existing: Path | None = None, registry: Path | None = None
) -> InstallPlan:
    """What to write and run. ``existing`` is the root under which present files are looked
    up (``/`` for a real installation, the prefix otherwise). ``registry`` is the sensor
    registry whose devices get MQTT accounts (default: the one the settings file names)."""
    root = existing or Path("/")
    conf = options.conf_dir
    cluster_file = conf / "kafka-cluster-id"
    on_target = root / cluster_file.relative_to("/")
    cluster_id = on_target.read_text().strip() if on_target.exists() else kafka_cluster_id()
    values = {
        "REPO": str(options.repo),
        "VENV_BIN": str(options.venv_bin),
        "SERVICES_HOME": str(options.services_home),
        "USER": options.user,
        "CONF_DIR": str(conf),
        "STATE_DIR": str(options.state_dir),
        "JAVA": options.java,
        "MOSQUITTO": options.mosquitto,
        "MOSQUITTO_PLUGIN": options.mosquitto_plugin,
        "CLUSTER_ID": cluster_id,
    }
    systemd_dir = options.repo / "deploy" / "systemd"
    local_dir = options.repo / "deploy" / "local"
    result = InstallPlan()
    for unit in UNITS:
        text = render((systemd_dir / unit).read_text(), values)
        result.files.append(PlannedFile(path=options.unit_dir / unit, text=text))
    configs = {
        "mosquitto.conf": (systemd_dir / "mosquitto.conf", {}),
        "kafka.properties": (
            local_dir / "kafka" / "server.properties",
            {"DATA": str(options.state_dir / "kafka"), "PORT": "9092", "CONTROLLER_PORT": "9093"},
        ),
        "influxdb.conf": (
            local_dir / "influxdb.conf",
            {"DATA": str(options.state_dir / "influxdb"), "PORT": "8086"},
        ),
    }
    for name, (template, extra) in configs.items():
        text = render(template.read_text(), values | extra)
        result.files.append(PlannedFile(path=conf / name, text=text))
    result.files.append(PlannedFile(path=cluster_file, text=cluster_id + "\n", keep=True))
    result.files.extend(_secrets(options, _Existing(root, conf), registry))
    result.files.append(
        PlannedFile(
            path=options.journald_dir / "urbanpulse.conf",
            text=(systemd_dir / "journald-urbanpulse.conf").read_text(),
        )
    )
    result.commands = _commands(options, result.files)
    result.next_steps = _next_steps(options)
    return result


@dataclass(frozen=True)
class _Existing:
    """The files of an earlier installation, read below ``root`` (``/``, or the prefix)."""

    root: Path
    conf_dir: Path

    def text(self, path: Path) -> str | None:
        """The text of a file on the target, None if there is none."""
        on_target = self.root / path.relative_to("/")
        return on_target.read_text() if on_target.exists() else None


def env_value(text: str, name: str) -> str | None:
    """The value of a ``NAME=value`` line of an environment file (commented lines are not)."""
    found = re.search(rf"^{re.escape(name)}=(.*)$", text, re.M)
    return found[1].strip() if found else None


def known_passwords(secrets_csv: str | None, settings_env: str | None) -> dict[str, str]:
    """The passwords an earlier installation gave out: its secrets CSV, and the platform's own
    from its settings file, which wins (the platform logs in with that one)."""
    from urbanpulse.credentials import INGEST_USER, parse_secrets

    known = parse_secrets(secrets_csv) if secrets_csv else {}
    platform = env_value(settings_env, PASSWORD_SETTING) if settings_env else None
    return known | ({INGEST_USER: platform} if platform else {})


def registry_devices_of(path: Path | None, existing: _Existing) -> list[tuple[str, str]]:
    """The devices of the registry (given, or named in the settings file): who gets an account.

    A path from the settings file is one on the target, so it is read below the prefix.
    Raises ``RegistryError`` (a ``ValueError``) naming the file when it cannot be read.
    """
    import yaml

    from urbanpulse.credentials import registry_devices
    from urbanpulse.registry import RegistryError, kind_of, parse_registry

    source = "--registry"
    if path is None:
        env = existing.text(existing.conf_dir / "urbanpulse.env")
        named = env_value(env, REGISTRY_SETTING) if env else None
        if not named:
            return []
        path = Path(named)
        path = existing.root / path.relative_to("/") if path.is_absolute() else path
        source = f"{REGISTRY_SETTING} of {existing.conf_dir / 'urbanpulse.env'}"
    try:
        return registry_devices(parse_registry(path.read_text(), kind_of(path)))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RegistryError) as err:
        raise RegistryError(f"the sensor registry {path} ({source}): {err}") from err


def _secrets(
    options: InstallOptions, existing: _Existing, registry: Path | None
) -> list[PlannedFile]:
    """The platform's settings file (kept once written) and the broker's accounts: the
    platform's and one per device of the registry, regenerated every run with known passwords."""
    from urbanpulse.credentials import INGEST_USER, dynamic_security, plan_accounts, secrets_csv

    mqtt = options.conf_dir / MQTT_DIR
    settings_env = existing.text(options.conf_dir / "urbanpulse.env")
    known = known_passwords(existing.text(mqtt / "secrets.csv"), settings_env)
    accounts = plan_accounts(registry_devices_of(registry, existing), known)
    password = next(a.password for a in accounts if a.username == INGEST_USER)
    return [
        PlannedFile(
            path=options.conf_dir / "urbanpulse.env",
            text=_settings_file(options, password, registry),
            mode=0o640,
            secret=True,
            keep=True,
        ),
        PlannedFile(
            path=mqtt / "dynamic-security.json",
            text=dynamic_security(accounts),
            mode=0o640,
            secret=True,
        ),
        PlannedFile(path=mqtt / "secrets.csv", text=secrets_csv(accounts), mode=0o600),
    ]


def _settings_file(options: InstallOptions, password: str, registry: Path | None) -> str:
    """The platform's settings file of a first installation."""
    from urbanpulse.credentials import INGEST_USER

    mqtt = options.conf_dir / MQTT_DIR
    example = options.conf_dir / "registry.yaml"
    registry_line = (
        f"{REGISTRY_SETTING}={registry.resolve()}"
        if registry is not None
        else f"# {REGISTRY_SETTING}={example}"
    )
    return f"""\
# UrbanPulse settings of urbanpulse.service: URBANPULSE_* variables (the README's configuration
# table lists them all). `systemctl restart urbanpulse` applies a change.
# Written once by `urbanpulse service install`; a later run leaves this file alone.

# The platform's MQTT account ({mqtt}/secrets.csv holds the same password).
URBANPULSE_MQTT__USERNAME={INGEST_USER}
{PASSWORD_SETTING}={password}

# The open-data API on every interface, for citizens; put a reverse proxy with TLS in front
# (docs/production.md), or set 127.0.0.1 when the proxy runs on this VM.
URBANPULSE_API__HOST=0.0.0.0
URBANPULSE_API__PORT=8000

# The sensor registry (docs/registry.md). Its devices also get their MQTT accounts from it:
# after a change, run `urbanpulse service install` again and restart urbanpulse-mosquitto.
{registry_line}
"""


def _commands(options: InstallOptions, files: list[PlannedFile]) -> list[list[str]]:
    user = options.user
    commands = [
        [
            "useradd",
            "--system",
            "--user-group",
            "--home-dir",
            str(options.state_dir),
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "UrbanPulse platform",
            user,
        ]
    ]
    secret = [str(f.path) for f in files if f.secret]
    commands.append(["chown", f"root:{user}", *secret])
    commands.append(["chmod", "0640", *secret])
    commands.append(["systemctl", "daemon-reload"])
    return commands


def _next_steps(options: InstallOptions) -> list[str]:
    mqtt = options.conf_dir / MQTT_DIR
    return [
        "systemctl disable --now mosquitto   # Debian's own broker, if installed: it takes 1883",
        "systemctl enable --now urbanpulse.target   # start now and at every boot",
        "systemctl status 'urbanpulse*'",
        "journalctl -u urbanpulse -f   # the platform's log ([ingest], [worker], [api] lines)",
        "cat /run/urbanpulse/supervisor.json   # each component's state and restarts",
        "urbanpulse service install --registry FILE   # MQTT accounts for your sensors "
        f"(again after each registry change); their passwords: {mqtt}/secrets.csv",
        "systemctl restart urbanpulse-mosquitto   # the broker reads its accounts at start only",
    ]


def user_exists(user: str) -> bool:
    """Whether the system knows this user."""
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def target_path(path: Path, prefix: Path | None) -> Path:
    """Where a file of the target machine is written: below ``prefix``, if given."""
    return prefix / path.relative_to("/") if prefix else path


def write_files(files: list[PlannedFile], prefix: Path | None) -> list[str]:
    """Write the plan's files (below ``prefix`` if given); the lines saying what was done."""
    done = []
    for planned in files:
        target = target_path(planned.path, prefix)
        if planned.keep and target.exists():
            done.append(f"kept     {target}")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, planned.mode)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(planned.text)
        os.chmod(target, planned.mode)
        done.append(f"wrote    {target}")
    return done


def run_commands(plan_: InstallPlan, options: InstallOptions) -> list[str]:
    """Create the user (if missing), protect the secrets, reload systemd."""
    done = []
    for command in plan_.commands:
        if command[0] == "useradd" and user_exists(options.user):
            done.append(f"user     {options.user} exists")
            continue
        subprocess.run(command, check=True)
        done.append("ran      " + shlex.join(command))
    return done
