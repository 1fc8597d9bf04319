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
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
VARIABLE = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?[^}]*\}")
ENV_LINE = re.compile(r"^(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
APP_SERVICES = ["ingest-1", "ingest-2", "worker", "api", "simulator"]


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


def env_example() -> tuple[dict[str, str], set[str]]:
    """The variables .env.example sets, and every variable it names (set or commented)."""
    assigned: dict[str, str] = {}
    named: set[str] = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            named.add(match["name"])
            if not match["comment"]:
                assigned[match["name"]] = match["value"]
    return assigned, named


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
    assert {"mosquitto", "kafka", "influxdb", "grafana", "prometheus", *APP_SERVICES} == set(
        services
    )
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
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        assert service.get("restart") in ("unless-stopped", "always"), name


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


def test_ingestors_share_one_subscription_with_their_own_client_ids(
    compose: dict[str, Any],
) -> None:
    ingestors = [s for s in compose["services"].values() if s.get("command") == ["ingest"]]
    assert len(ingestors) == 2
    client_ids = {s["environment"]["URBANPULSE_MQTT__CLIENT_ID"] for s in ingestors}
    groups = {s["environment"]["URBANPULSE_MQTT__SHARED_GROUP"] for s in ingestors}
    assert len(client_ids) == 2, "each ingestor needs its own persistent MQTT session"
    assert len(groups) == 1 and None not in groups


def test_the_simulator_runs_only_in_its_profile(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        expected = ["simulator"] if name == "simulator" else None
        assert service.get("profiles") == expected, name


def test_secrets_come_from_env_never_from_the_compose_file(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        assert compose["services"][name]["env_file"] == [{"path": ".env", "required": True}]
    for name, service in compose["services"].items():
        for key in service.get("environment", {}):
            secret = any(word in key for word in ("PASSWORD", "TOKEN", "SECRET"))
            assert not secret or key.endswith("_FILE"), f"{name} sets {key} in compose.yaml"
    for name, secret in compose["secrets"].items():
        assert set(secret) == {"environment"}, f"secret {name} must come from .env"


def test_every_setting_is_in_env_example() -> None:
    _, named = env_example()
    missing = sorted(setting_variables() - named)
    assert missing == [], f"add these settings to {ENV_EXAMPLE.relative_to(REPO)}: {missing}"
    unknown = sorted({n for n in named if n.startswith("URBANPULSE_")} - setting_variables())
    assert unknown == [], f"{ENV_EXAMPLE.name} names variables no setting reads: {unknown}"


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
    [COMPOSE_DIR / "mosquitto" / "mosquitto.conf", REPO / "deploy" / "local" / "mosquitto.conf"],
    ids=["compose", "local"],
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
    for path in files:
        lines = path.read_text().splitlines()
        text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
        for name in re.findall(r"\$\{([A-Za-z0-9_]+)\}", text):
            assert name in grafana["environment"], f"{path.name} needs {name} in Grafana's env"
        for secret in re.findall(r"\$__file\{([^}]+)\}", text):
            assert secret in secrets, f"{path.name} reads {secret}, which Grafana does not get"
        for folder in re.findall(r"path: (\S+)", text):
            assert folder.startswith("/var/lib/grafana/dashboards"), folder
