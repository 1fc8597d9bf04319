"""deploy/k8s/urbanpulse: the Helm chart renders, and its manifests validate with kubeconform.

kubeconform reads the Kubernetes JSON schemas offline (installed by deploy/tools/install.sh
from PyPI's kubernetes-validate). Strimzi's KafkaTopic is a custom resource without a schema
here: it is checked by hand below. Nothing is applied to a cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy.support import DEPLOY, run

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
    "--set", "strimzi.topics.enabled=true",
]  # fmt: skip


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


def test_helm_lint_is_clean(helm: Path) -> None:
    result = run(helm, "lint", "--strict", CHART, *TOKENS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values", ["defaults", "everything-on"])
def test_rendered_manifests_validate(
    helm: Path,
    kubeconform: Path,
    k8s_schemas: Path,
    tmp_path: Path,
    kube_version: str,
    values: str,
) -> None:
    args = TOKENS if values == "defaults" else EVERYTHING_ON
    documents = render(helm, kube_version, *args)
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


def test_ingestors_get_stable_client_ids_and_one_shared_group(helm: Path) -> None:
    documents = render(helm, "1.37.0", *TOKENS)
    (ingest,) = by_kind(documents, "StatefulSet")
    env = {e["name"]: e for e in ingest["spec"]["template"]["spec"]["containers"][0]["env"]}
    client_id = env["URBANPULSE_MQTT__CLIENT_ID"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert client_id == "metadata.name"  # ingest-0, ingest-1, ... keep their MQTT sessions
    assert env["URBANPULSE_MQTT__SHARED_GROUP"]["value"]


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
