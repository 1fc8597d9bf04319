"""deploy/k8s/urbanpulse: the Helm chart renders, and its manifests validate with kubeconform.

kubeconform reads the Kubernetes JSON schemas offline (installed by deploy/tools/install.sh
from PyPI's kubernetes-validate). Strimzi's KafkaTopic is a custom resource without a schema
here: it is checked by hand below. Nothing is applied to a cluster, and Grafana cannot run
here: its pod is checked against the generated provisioning files it must serve.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy.support import DEPLOY, REPO, run

CHART = DEPLOY / "k8s" / "urbanpulse"
# The chart's oldest supported Kubernetes (Chart.yaml kubeVersion) and the newest with schemas.
KUBE_VERSIONS = ["1.25.0", "1.37.0"]
TOKENS = ["--set", "secrets.influxReadToken=r", "--set", "secrets.influxWriteToken=w"]
# Least privilege: each workload → the Secret keys it gets, and as which variable (issue 15).
ALLOWED_SECRETS = {
    "city-urbanpulse-ingest": {"URBANPULSE_MQTT__PASSWORD": "mqtt-password"},
    "city-urbanpulse-worker": {"URBANPULSE_INFLUX__TOKEN": "influx-write-token"},
    "city-urbanpulse-api": {"URBANPULSE_INFLUX__TOKEN": "influx-read-token"},
}
EVERYTHING_ON = [
    "--set", "secrets.existingSecret=city-secrets",
    "--set", "api.ingress.enabled=true",
    "--set", "api.ingress.tlsSecretName=data-tls",
    "--set", "ingest.autoscaling.enabled=true",
    "--set", "ingest.sharedGroup=ingest",
    "--set", "strimzi.topics.enabled=true",
]  # fmt: skip
GRAFANA_ON = [
    *EVERYTHING_ON,
    "--set", "grafana.enabled=true",
    "--set", "grafana.influxTokenSecret.name=city-influx-read",
    "--set", "grafana.admin.password=trial",
    "--set", "grafana.ingress.enabled=true",
    "--set", "grafana.ingress.tlsSecretName=grafana-tls",
]  # fmt: skip
VALUES = {
    "defaults": TOKENS,
    "everything-on": EVERYTHING_ON,
    "grafana": GRAFANA_ON,
}
GENERATED = REPO / "dashboards"


def render(helm: Path, kube_version: str, *args: str) -> list[dict[str, Any]]:
    result = run(
        helm, "template", "city", CHART, "--namespace", "urbanpulse",
        "--kube-version", kube_version, *args,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def kubeconform_check(
    kubeconform: Path, schemas: Path, kube_version: str, documents: list[dict[str, Any]], tmp: Path
) -> str:
    manifests = tmp / f"manifests-{kube_version}.yaml"
    manifests.write_text(yaml.safe_dump_all(documents))
    result = run(
        kubeconform, "-strict", "-summary", "-kubernetes-version", kube_version,
        "-schema-location", schemas, "-skip", "KafkaTopic", manifests,
    )  # fmt: skip
    return result.stdout + result.stderr


def by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


@pytest.mark.parametrize("values", ["defaults", "grafana"])
def test_helm_lint_is_clean(helm: Path, values: str) -> None:
    result = run(helm, "lint", "--strict", CHART, *VALUES[values])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values", list(VALUES))
def test_rendered_manifests_validate(
    helm: Path,
    kubeconform: Path,
    k8s_schemas: Path,
    tmp_path: Path,
    kube_version: str,
    values: str,
) -> None:
    documents = render(helm, kube_version, *VALUES[values])
    output = kubeconform_check(kubeconform, k8s_schemas, kube_version, documents, tmp_path)
    custom = len(by_kind(documents, "KafkaTopic"))
    expected = f"Valid: {len(documents) - custom}, Invalid: 0, Errors: 0, Skipped: {custom}"
    assert expected in output, output


def test_kubeconform_rejects_a_broken_manifest(
    helm: Path, kubeconform: Path, k8s_schemas: Path, tmp_path: Path
) -> None:
    documents = render(helm, "1.37.0", *TOKENS)
    by_kind(documents, "PodDisruptionBudget")[0]["spec"]["minAvailabel"] = 1  # a typo
    by_kind(documents, "Deployment")[0]["spec"]["replicas"] = "two"
    output = kubeconform_check(kubeconform, k8s_schemas, "1.37.0", documents, tmp_path)
    assert "Invalid: 2" in output, output


def test_the_components_and_their_safety_nets(helm: Path) -> None:
    documents = render(helm, "1.37.0", *EVERYTHING_ON)
    workloads = {
        d["metadata"]["name"]: d for d in documents if d["kind"] in ("Deployment", "StatefulSet")
    }
    assert set(workloads) == {
        "city-urbanpulse-ingest",
        "city-urbanpulse-worker",
        "city-urbanpulse-api",
    }
    hpas = {
        d["spec"]["scaleTargetRef"]["name"]: d
        for d in by_kind(documents, "HorizontalPodAutoscaler")
    }
    pdbs = by_kind(documents, "PodDisruptionBudget")
    assert set(hpas) == set(workloads)
    for name, workload in workloads.items():
        pod = workload["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        assert hpas[name]["spec"]["scaleTargetRef"]["kind"] == workload["kind"]
        assert container["resources"]["requests"], name
        assert container["readinessProbe"] and container["startupProbe"], name
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        labels = pod["metadata"]["labels"]
        matching = [
            p for p in pdbs if p["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(matching) == 1, f"{name} needs exactly one PodDisruptionBudget"
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_api_probes_liveness_and_readiness_apart(helm: Path) -> None:
    documents = render(helm, "1.37.0", *TOKENS)
    (api,) = [d for d in by_kind(documents, "Deployment") if d["metadata"]["name"].endswith("api")]
    (container,) = api["spec"]["template"]["spec"]["containers"]
    # Liveness without I/O (a store outage must not restart pods); readiness without MQTT.
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def ingest_env(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The ingest StatefulSet's environment, by variable."""
    (ingest,) = by_kind(documents, "StatefulSet")
    return {e["name"]: e for e in ingest["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_one_ingestor_by_default_on_a_plain_subscription_that_survives_restarts(
    helm: Path,
) -> None:
    documents = render(helm, "1.37.0", *TOKENS)
    (ingest,) = by_kind(documents, "StatefulSet")
    env = ingest_env(documents)
    client_id = env["URBANPULSE_MQTT__CLIENT_ID"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert client_id == "metadata.name"  # ingest-0, ingest-1, ... keep their MQTT sessions
    assert ingest["spec"]["replicas"] == 1
    assert env["URBANPULSE_MQTT__SHARED_GROUP"]["value"] == ""  # Mosquitto keeps plain ones


def test_several_ingestors_share_one_group(helm: Path) -> None:
    scaled = [*TOKENS, "--set", "ingest.replicas=3", "--set", "ingest.sharedGroup=ingest"]
    documents = render(helm, "1.37.0", *scaled)
    assert ingest_env(documents)["URBANPULSE_MQTT__SHARED_GROUP"]["value"] == "ingest"


@pytest.mark.parametrize("scale", ["ingest.replicas=2", "ingest.autoscaling.enabled=true"])
def test_several_ingestors_without_a_group_stop_the_install(helm: Path, scale: str) -> None:
    args = [x for value in [*TOKENS[1::2], scale] for x in ("--set", value)]
    result = run(helm, "template", "city", CHART, "--kube-version", "1.37.0", *args)
    assert result.returncode != 0
    assert "ingest.sharedGroup is required" in result.stderr


def secret_refs(workload: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Each variable a workload takes from a Secret: (secret name, key)."""
    pod = workload["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "envFrom" not in container or all("secretRef" not in e for e in container["envFrom"])
    assert all("secret" not in volume for volume in pod.get("volumes", []))
    return {
        e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }


@pytest.mark.parametrize("values", ["created", "existing"])
def test_each_component_gets_only_its_own_secret(helm: Path, values: str) -> None:
    documents = render(helm, "1.37.0", *(TOKENS if values == "created" else EVERYTHING_ON))
    name = "city-secrets" if values == "existing" else "city-urbanpulse-secrets"
    workloads = by_kind(documents, "Deployment") + by_kind(documents, "StatefulSet")
    got = {w["metadata"]["name"]: secret_refs(w) for w in workloads}
    assert got == {
        workload: {variable: (name, key) for variable, key in refs.items()}
        for workload, refs in ALLOWED_SECRETS.items()
    }


def test_secrets_are_referenced_not_rendered_into_pods(helm: Path) -> None:
    documents = render(helm, "1.37.0", *EVERYTHING_ON)
    assert by_kind(documents, "Secret") == []  # existingSecret: the chart makes none
    (secret,) = by_kind(render(helm, "1.37.0", *TOKENS), "Secret")
    assert set(secret["stringData"]) == {"mqtt-password", "influx-write-token", "influx-read-token"}
    used = {key for refs in ALLOWED_SECRETS.values() for key in refs.values()}
    assert used == set(secret["stringData"])  # no key that nobody, or everybody, reads


@pytest.mark.parametrize("missing", ["influxReadToken", "influxWriteToken"])
def test_a_missing_token_stops_the_install(helm: Path, missing: str) -> None:
    given = [a for a in TOKENS if a != "--set" and not a.startswith(f"secrets.{missing}=")]
    args = [x for value in given for x in ("--set", value)]
    result = run(helm, "template", "city", CHART, "--kube-version", "1.37.0", *args)
    assert result.returncode != 0
    assert f"secrets.{missing} is required" in result.stderr


def test_strimzi_topics_follow_the_settings(helm: Path) -> None:
    documents = render(helm, "1.37.0", *EVERYTHING_ON)
    topics = by_kind(documents, "KafkaTopic")
    assert {t["spec"]["topicName"] for t in topics} == {"readings", "deadletter", "alerts"}
    for topic in topics:
        assert topic["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"]
        assert isinstance(topic["spec"]["partitions"], int) and topic["spec"]["partitions"] >= 1


def test_workers_do_not_outnumber_partitions() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    partitions = int(values["config"]["URBANPULSE_KAFKA__PARTITIONS"])
    assert values["worker"]["autoscaling"]["maxReplicas"] <= partitions
    assert values["strimzi"]["topics"]["partitions"] == partitions


# --- the optional Grafana --------------------------------------------------------------------


def grafana_pod(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [
        d for d in by_kind(documents, "Deployment") if d["metadata"]["name"].endswith("-grafana")
    ]
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def mounted_files(documents: list[dict[str, Any]]) -> dict[str, str]:
    """Every file the Grafana container sees from a ConfigMap: absolute path → content."""
    pod = grafana_pod(documents)
    maps = {d["metadata"]["name"]: d["data"] for d in by_kind(documents, "ConfigMap")}
    volumes = {v["name"]: v for v in pod["volumes"]}
    files = {}
    for mount in pod["containers"][0]["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" not in volume:
            continue
        data = maps[volume["configMap"]["name"]]
        if "subPath" in mount:
            files[mount["mountPath"]] = data[mount["subPath"]]
        else:
            files.update({f"{mount['mountPath']}/{key}": text for key, text in data.items()})
    return files


def test_grafana_is_off_by_default(helm: Path) -> None:
    documents = render(helm, "1.37.0", *EVERYTHING_ON)
    assert not [d for d in documents if "grafana" in d["metadata"]["name"]]


def test_the_chart_links_to_the_generated_files_and_packages_them(
    helm: Path, tmp_path: Path
) -> None:
    # Links, not copies: the boards cannot drift from `urbanpulse dashboards generate`.
    assert (CHART / "files" / "dashboards").resolve() == GENERATED / "json"
    assert (CHART / "files" / "provisioning").resolve() == GENERATED / "provisioning"
    result = run(helm, "package", CHART, "--destination", tmp_path)
    assert result.returncode == 0, result.stderr
    (package,) = tmp_path.glob("urbanpulse-*.tgz")
    with tarfile.open(package) as archive:
        packaged = {
            name.removeprefix("urbanpulse/files/dashboards/"): archive.extractfile(name).read()  # type: ignore[union-attr]
            for name in archive.getnames()
            if name.startswith("urbanpulse/files/dashboards/")
        }
    boards = {
        str(path.relative_to(GENERATED / "json")): path.read_bytes()
        for path in (GENERATED / "json").glob("*/*.json")
    }
    assert len(boards) >= 7
    assert packaged == boards


def test_grafana_serves_the_generated_boards_and_provisioning_unchanged(helm: Path) -> None:
    files = mounted_files(render(helm, "1.37.0", *GRAFANA_ON))
    provisioning = GENERATED / "provisioning"
    assert files["/etc/grafana/grafana.ini"] == (provisioning / "grafana.ini").read_text()
    for kind in ("datasources", "dashboards"):
        for path in (provisioning / kind).glob("*.yaml"):
            assert files[f"/etc/grafana/provisioning/{kind}/{path.name}"] == path.read_text()
    # Each provider's folder holds exactly the generated boards of that folder.
    providers = yaml.safe_load((provisioning / "dashboards" / "urbanpulse.yaml").read_text())
    for provider in providers["providers"]:
        folder = provider["options"]["path"]
        served = {p: text for p, text in files.items() if p.rpartition("/")[0] == folder}
        generated = GENERATED / "json" / folder.rpartition("/")[2]
        assert served == {f"{folder}/{b.name}": b.read_text() for b in generated.glob("*.json")}
        assert served, folder
    home = re.search(
        r"^default_home_dashboard_path = (\S+)$", files["/etc/grafana/grafana.ini"], re.M
    )
    assert home and home.group(1) in files


def test_grafana_data_sources_get_their_variables_and_a_read_only_token(helm: Path) -> None:
    documents = render(helm, "1.37.0", *GRAFANA_ON)
    pod = grafana_pod(documents)
    (container,) = pod["containers"]
    # The data sources without their comments (which mention ${VAR} as an example).
    datasources = json.dumps(
        yaml.safe_load((GENERATED / "provisioning" / "datasources" / "urbanpulse.yaml").read_text())
    )
    # Every ${VAR} of the data sources is set, directly or from the platform's ConfigMap.
    (env_from,) = container["envFrom"]
    (settings,) = [
        d["data"]
        for d in by_kind(documents, "ConfigMap")
        if d["metadata"]["name"] == env_from["configMapRef"]["name"]
    ]
    env = {e["name"] for e in container["env"]} | set(settings)
    wanted = set(re.findall(r"\$\{(\w+)\}", datasources))
    assert wanted >= {"URBANPULSE_INFLUX__URL", "URBANPULSE_DASHBOARDS__PROMETHEUS_URL"}
    assert wanted <= env
    # The token file they read is the read-only token, and only that key of its Secret.
    (token_file,) = set(re.findall(r"\$__file\{([^}]+)\}", datasources))
    folder, _, name = token_file.rpartition("/")
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == folder]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "city-influx-read"
    assert volume["secret"]["items"] == [{"key": "influx-read-token", "path": name}]
    # Without a Secret of its own, the platform's: still only its read-only key.
    pod = grafana_pod(
        render(helm, "1.37.0", *GRAFANA_ON, "--set", "grafana.influxTokenSecret.name=")
    )
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "city-secrets"
    assert volume["secret"]["items"] == [{"key": "influx-read-token", "path": name}]
    # Staff sign in with the admin Secret; the pod runs as Grafana's user, read-only root.
    admin = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e
    }
    assert set(admin) == {"GF_SECURITY_ADMIN_USER", "GF_SECURITY_ADMIN_PASSWORD"}
    assert pod["securityContext"]["runAsUser"] == 472
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    root_url = {e["name"]: e.get("value") for e in container["env"]}["GF_SERVER_ROOT_URL"]
    assert root_url == "https://grafana.example.org/"


def test_grafana_keeps_its_database_and_has_its_own_ingress(helm: Path) -> None:
    documents = render(helm, "1.37.0", *GRAFANA_ON)
    (claim,) = by_kind(documents, "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    volumes = {v["name"]: v for v in grafana_pod(documents)["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    ingresses = {d["metadata"]["name"]: d for d in by_kind(documents, "Ingress")}
    grafana = ingresses["city-urbanpulse-grafana"]["spec"]
    assert grafana["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == (
        "city-urbanpulse-grafana"
    )
    assert grafana["tls"][0]["secretName"] == "grafana-tls"


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("grafana.admin.password=", "grafana.admin.password is required"),
    ],
)
def test_grafana_refuses_to_install_without_its_secrets(
    helm: Path, missing: str, message: str
) -> None:
    result = run(
        helm, "template", "city", CHART, "--kube-version", "1.37.0", *GRAFANA_ON, "--set", missing
    )
    assert result.returncode != 0
    assert message in result.stderr
