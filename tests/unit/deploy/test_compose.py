"""deploy/compose/: the Compose file against the Compose specification, and its consistency.

No Docker engine runs here, so nothing is started: the file is validated against the
specification's JSON schema (``../shared/schemas/compose/compose-spec.json``, read in place) and
checked for what the schema cannot see (references, settings, the broker's queue limits).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from tests.unit.deploy.support import DEPLOY, REPO
from urbanpulse.settings import MqttSettings, Settings

COMPOSE_DIR = DEPLOY / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"  # Compose's own variables: secrets, images, ports
PLATFORM_ENV_EXAMPLE = COMPOSE_DIR / "components.env.example"  # the components' settings
VARIABLE = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?[^}]*\}")
ENV_LINE = re.compile(r"^(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
APP_SERVICES = ["ingest-1", "ingest-2", "worker", "api", "simulator"]
ONE_SHOT_SERVICES = ["mqtt-credentials", "influxdb-tokens"]
SECRET_WORDS = ("PASSWORD", "TOKEN", "SECRET", "API_KEYS")
# What counts as a secret a container gets: Compose secrets (by name), the volumes holding the
# components' InfluxDB tokens and the broker's accounts, and the folder of device passwords.
SECRET_VOLUMES = {"influxdb-read-token", "influxdb-write-token", "mqtt-accounts"}
SECRET_BINDS = {"./credentials"}
# Least privilege: each service → every secret it may get (issue 15). Nothing else gets any.
ALLOWED_SECRETS: dict[str, set[str]] = {
    "mqtt-credentials": {
        "mqtt_service_password",
        "mqtt_simulator_password",
        "mqtt-accounts",
        "./credentials",
    },
    "mosquitto": {"mqtt_service_password", "mqtt-accounts"},
    "kafka": set(),
    "influxdb": {"influxdb_admin_password", "influxdb_operator_token"},
    "influxdb-tokens": {"influxdb_operator_token", "influxdb-read-token", "influxdb-write-token"},
    "grafana": {"grafana_admin_password", "influxdb-read-token"},
    "prometheus": set(),
    "ingest-1": {"mqtt_service_password"},
    "ingest-2": {"mqtt_service_password"},
    "worker": {"influxdb-write-token"},
    "api": {"influxdb-read-token"},
    "simulator": {"mqtt_simulator_password"},
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
def schema(shared_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (shared_dir / "schemas" / "compose" / "compose-spec.json").read_text()
    )
    return loaded


def env_lines(path: Path) -> tuple[dict[str, str], set[str]]:
    """The variables an env file sets, and every variable it names as ``NAME=`` (set or not)."""
    assigned: dict[str, str] = {}
    named: set[str] = set()
    for line in path.read_text().splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            named.add(match["name"])
            if not match["comment"]:
                assigned[match["name"]] = match["value"]
    return assigned, named


def env_example() -> tuple[dict[str, str], set[str]]:
    """The variables .env.example sets, and every variable it names (set or commented)."""
    return env_lines(ENV_EXAMPLE)


def mentioned(path: Path) -> set[str]:
    """Every URBANPULSE_* name a file mentions anywhere (documented, set or not)."""
    return set(re.findall(r"\bURBANPULSE_[A-Z0-9_]*[A-Z0-9]", path.read_text()))


def setting_variables(model: type[BaseModel] = Settings, prefix: str = "URBANPULSE_") -> set[str]:
    """Every environment variable the settings read."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names |= setting_variables(kind, f"{prefix}{name.upper()}__")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


def test_compose_file_validates_against_the_compose_specification(
    compose: dict[str, Any], schema: dict[str, Any]
) -> None:
    validator = jsonschema.Draft7Validator(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose)
    ]
    assert errors == []


def test_the_schema_check_rejects_a_broken_compose_file(
    compose: dict[str, Any], schema: dict[str, Any]
) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["restart_policy"] = "always"  # not a service key
    broken["volumes"]["kafka-data"] = {"driverr": "local"}  # a typo
    messages = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(broken)]
    assert len(messages) == 2, messages


def test_the_platform_services_are_all_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    infrastructure = {"mosquitto", "kafka", "influxdb", "grafana", "prometheus"}
    assert {*infrastructure, *APP_SERVICES, *ONE_SHOT_SERVICES} == set(services)
    assert "apache/kafka:" in services["kafka"]["image"]
    assert "influxdb:2.7" in services["influxdb"]["image"]
    assert services["worker"]["deploy"]["replicas"] in ("${WORKER_REPLICAS:-2}", 2)


def test_prometheus_scrapes_every_component_on_its_metrics_port(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    targets: set[str] = set()
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets.update(static["targets"])
        for dns in job.get("dns_sd_configs", []):
            targets.update(f"{name}:{dns['port']}" for name in dns["names"])
    services = compose["services"]
    wanted = {
        f"{name}:{services[name]['labels']['prometheus.io/port']}"
        for name in APP_SERVICES
        if "prometheus.io/port" in services[name].get("labels", {})
    }
    assert wanted and wanted == targets


def test_every_long_running_service_has_a_health_check_and_a_restart_policy(
    compose: dict[str, Any],
) -> None:
    for name, service in compose["services"].items():
        if name in ONE_SHOT_SERVICES:
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        assert service.get("restart") in ("unless-stopped", "always"), name


def test_one_shot_services_run_to_completion_before_their_users(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ONE_SHOT_SERVICES:
        assert services[name]["restart"] == "no", name
        users = [
            user
            for user, service in services.items()
            if service.get("depends_on", {}).get(name, {}).get("condition")
            == "service_completed_successfully"
        ]
        assert users, f"nobody waits for {name}"
    for user in ("grafana", "worker", "api"):
        assert "influxdb-tokens" in services[user]["depends_on"], user
    assert "mqtt-credentials" in services["mosquitto"]["depends_on"]


def test_references_point_to_things_that_exist(compose: dict[str, Any]) -> None:
    volumes, secrets = set(compose["volumes"]), set(compose["secrets"])
    for name, service in compose["services"].items():
        for dependency in service.get("depends_on", {}):
            assert dependency in compose["services"], f"{name} depends on unknown {dependency}"
        for secret in service.get("secrets", []):
            assert secret in secrets, f"{name} uses undeclared secret {secret}"
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                # Bind mounts: our files must exist; dashboards/ is filled by its own issue.
                if "dashboards" not in source:
                    assert (COMPOSE_DIR / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in volumes, f"{name} uses undeclared volume {source}"
    build = compose["x-urbanpulse"]["build"]
    assert (COMPOSE_DIR / build["context"] / build["dockerfile"]).is_file()


def test_one_ingestor_by_default_two_on_one_shared_group_with_scale_out(
    compose: dict[str, Any],
) -> None:
    ingestors = {n: s for n, s in compose["services"].items() if s.get("command") == ["ingest"]}
    assert sorted(ingestors) == ["ingest-1", "ingest-2"]
    # ingest-1 alone by default: a plain subscription, which Mosquitto keeps over a restart.
    assert "profiles" not in ingestors["ingest-1"]
    assert ingestors["ingest-2"]["profiles"] == ["scale-out"]
    client_ids = {s["environment"]["URBANPULSE_MQTT__CLIENT_ID"] for s in ingestors.values()}
    groups = {s["environment"]["URBANPULSE_MQTT__SHARED_GROUP"] for s in ingestors.values()}
    assert len(client_ids) == 2, "each ingestor needs its own persistent MQTT session"
    assert groups == {"${URBANPULSE_MQTT__SHARED_GROUP:-}"}  # one group for both, empty: none
    env_example = (COMPOSE_DIR / ".env.example").read_text().splitlines()
    assert "URBANPULSE_MQTT__SHARED_GROUP=" in env_example
    # The broker makes a client's id its user name (use_username_as_clientid): they must agree.
    for ingestor in ingestors.values():
        env = ingestor["environment"]
        assert env["URBANPULSE_MQTT__USERNAME"] == env["URBANPULSE_MQTT__CLIENT_ID"]
    conf = (COMPOSE_DIR / "mosquitto" / "mosquitto.conf").read_text().splitlines()
    assert "use_username_as_clientid true" in conf


def test_the_simulator_and_the_second_ingestor_run_only_in_their_profiles(
    compose: dict[str, Any],
) -> None:
    profiles = {"simulator": ["simulator"], "ingest-2": ["scale-out"]}
    for name, service in compose["services"].items():
        assert service.get("profiles") == profiles.get(name), name


def test_secrets_come_from_env_never_from_the_compose_file(compose: dict[str, Any]) -> None:
    for name in [*APP_SERVICES, "mqtt-credentials"]:
        service = compose["services"][name]
        assert service["env_file"] == [{"path": "components.env", "required": True}], name
    for name, service in compose["services"].items():
        for key in service.get("environment", {}):
            secret = any(word in key for word in SECRET_WORDS)
            assert not secret or key.endswith("_FILE"), f"{name} sets {key} in compose.yaml"
    for name, secret in compose["secrets"].items():
        assert set(secret) == {"environment"}, f"secret {name} must come from .env"


def secrets_of(service: dict[str, Any]) -> set[str]:
    """The secrets a service gets: Compose secrets, token and account volumes, password files."""
    got = {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}
    for mount in service.get("volumes", []):
        source = mount.split(":")[0]
        if source in SECRET_VOLUMES | SECRET_BINDS:
            got.add(source)
    return got


def test_each_service_gets_only_the_secrets_it_needs(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(ALLOWED_SECRETS) == set(services), "name every service in ALLOWED_SECRETS"
    got = {name: secrets_of(service) for name, service in services.items()}
    assert got == ALLOWED_SECRETS
    # .env (every secret) reaches no container; secret variables are used only in `secrets:`.
    secret_variables = {m["name"] for m in VARIABLE.finditer(str(compose["x-required-secrets"]))}
    for name, service in services.items():
        assert all(f["path"] != ".env" for f in service.get("env_file", [])), name
        text = yaml.safe_dump({k: v for k, v in service.items() if k != "secrets"})
        used = {m["name"] for m in VARIABLE.finditer(text)} & secret_variables
        assert not used, f"{name} gets {used} other than as a secret file"


def test_secret_files_the_components_read_are_there(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        mounts = [m.split(":")[1] for m in service.get("volumes", [])]
        files = {f"/run/secrets/{s}" for s in secrets_of(service)}
        for key, value in service.get("environment", {}).items():
            if key.endswith("_FILE") and str(value).startswith("/run/secrets/"):
                mounted = any(str(value).startswith(f"{target}/") for target in mounts)
                assert value in files or mounted, f"{name}: {key}={value} is not mounted"


def test_the_broker_accounts_are_the_services_accounts(compose: dict[str, Any]) -> None:
    services = compose["services"]
    command = services["mqtt-credentials"]["command"]
    options: dict[str, list[str]] = {}
    for flag, value in zip(command[1::2], command[2::2], strict=True):
        options.setdefault(flag, []).append(value)
    password_files = dict(item.split("=", 1) for item in options["--password-file"])
    publishers = {item.split("=", 1)[0] for item in options["--publisher"]}
    logins = {
        name: service["environment"]
        for name, service in services.items()
        if "URBANPULSE_MQTT__USERNAME" in service.get("environment", {})
    }
    assert set(logins) == {"ingest-1", "ingest-2", "simulator"}
    for name, env in logins.items():
        user = env["URBANPULSE_MQTT__USERNAME"]
        accounts = options["--ingest"] if name.startswith("ingest") else publishers
        assert user in accounts, name
        # The service reads the very secret its account's password was set from.
        assert env["URBANPULSE_MQTT__PASSWORD_FILE"] == password_files[user], name
    assert options["--monitor"] == [services["mosquitto"]["environment"]["HEALTHCHECK_USER"]]
    assert set(password_files) == {*options["--ingest"], *options["--monitor"], *publishers}
    assert options["--shared-group"] == ["${URBANPULSE_MQTT__SHARED_GROUP:-ingest}"]


def test_components_env_holds_no_secret() -> None:
    _, named = env_lines(PLATFORM_ENV_EXAMPLE)
    secret = {n for n in named if any(w in n for w in SECRET_WORDS) and not n.endswith("_FILE")}
    assert secret == set(), f"{PLATFORM_ENV_EXAMPLE.name} must not hold {secret}"
    assert "CHANGE-ME" not in PLATFORM_ENV_EXAMPLE.read_text()


def test_components_env_sets_nothing_compose_overrides(compose: dict[str, Any]) -> None:
    assigned, _ = env_lines(PLATFORM_ENV_EXAMPLE)
    overridden = set(compose["x-addresses"])
    for service in compose["services"].values():
        overridden |= set(service.get("environment", {}))
    assert set(assigned) & overridden == set()


def test_every_setting_is_in_an_env_example() -> None:
    named = mentioned(PLATFORM_ENV_EXAMPLE) | mentioned(ENV_EXAMPLE)
    missing = sorted(setting_variables() - named)
    assert missing == [], f"add these settings to {PLATFORM_ENV_EXAMPLE.name}: {missing}"
    unknown = sorted(named - setting_variables())
    assert unknown == [], f"the env examples name variables no setting reads: {unknown}"
    # The names Compose needs itself are set in .env, the only file Compose reads.
    shared = {n for n in env_example()[0] if n.startswith("URBANPULSE_")}
    assert shared <= mentioned(COMPOSE_FILE)


def test_every_variable_of_the_compose_file_is_in_env_example() -> None:
    assigned, named = env_example()
    lines = COMPOSE_FILE.read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    for match in VARIABLE.finditer(text):
        name, op = match["name"], match["op"]
        assert name in named, f"compose.yaml uses ${{{name}}}, which .env.example does not name"
        if op in (None, ":?", "?"):  # no default: the example must give a value
            assert assigned.get(name), f"${{{name}}} has no default and no value in .env.example"


def mosquitto_options(path: Path, *keys: str) -> dict[str, str]:
    """The values of these options in a Mosquitto config file."""
    pairs = (line.split(None, 1) for line in path.read_text().splitlines() if line.strip())
    return {k: v.strip() for k, v in (p for p in pairs if len(p) == 2) if k in keys}


def test_mosquitto_queues_like_the_local_broker() -> None:
    keys = ("max_queued_messages", "max_queued_bytes", "max_inflight_messages")
    production = mosquitto_options(COMPOSE_DIR / "mosquitto" / "mosquitto.conf", *keys)
    assert production == mosquitto_options(REPO / "deploy" / "local" / "mosquitto.conf", *keys)
    assert len(production) == 3
    conf = (COMPOSE_DIR / "mosquitto" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "persistence true" in conf


@pytest.mark.parametrize(
    "conf",
    [
        COMPOSE_DIR / "mosquitto" / "mosquitto.conf",
        REPO / "deploy" / "local" / "mosquitto.conf",
        REPO / "deploy" / "systemd" / "mosquitto.conf",
    ],
    ids=["compose", "local", "systemd"],
)
def test_every_broker_refuses_what_the_ingestor_would_refuse(conf: Path) -> None:
    # Both limits equal the ingestor's: the packet limit acts, the payload limit never exceeds it
    # (tests/integration/test_broker_limits.py shows what the broker then does).
    limit = str(MqttSettings().max_payload_bytes)
    options = mosquitto_options(conf, "max_packet_size", "message_size_limit")
    assert options == {"max_packet_size": limit, "message_size_limit": limit}


def test_grafana_has_what_the_provisioning_files_ask_for(compose: dict[str, Any]) -> None:
    files = sorted((REPO / "dashboards" / "provisioning").glob("**/*.yaml"))
    if not files:
        pytest.skip("dashboards/provisioning/ has no files yet (urbanpulse dashboards generate)")
    grafana = compose["services"]["grafana"]
    secrets = {f"/run/secrets/{name}" for name in grafana["secrets"]}
    mounts = [m.split(":")[1] for m in grafana["volumes"]]
    for path in files:
        lines = path.read_text().splitlines()
        text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
        for name in re.findall(r"\$\{([A-Za-z0-9_]+)\}", text):
            assert name in grafana["environment"], f"{path.name} needs {name} in Grafana's env"
        for secret in re.findall(r"\$__file\{([^}]+)\}", text):
            mounted = any(secret.startswith(f"{target}/") for target in mounts)
            assert secret in secrets or mounted, f"{path.name} reads {secret}, not in Grafana"
        for folder in re.findall(r"path: (\S+)", text):
            assert folder.startswith("/var/lib/grafana/dashboards"), folder
    # The data sources read the read-only token, the only InfluxDB token Grafana gets.
    datasources = (REPO / "dashboards" / "provisioning" / "datasources").glob("*.yaml")
    tokens = re.findall(r"token: \$__file\{([^}]+)\}", "".join(p.read_text() for p in datasources))
    assert tokens and set(tokens) == {"/run/secrets/influxdb-read/token"}
    assert "influxdb-read-token:/run/secrets/influxdb-read:ro" in grafana["volumes"]
