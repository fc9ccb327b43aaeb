"""The operator's Deployment and its companions: non-root, read-only, probed, configured by values."""

from __future__ import annotations

import json
from typing import Any

from helm_chart import CHART, NAMESPACE, NAMESPACED, RELEASE, find, one, render

FULLNAME = f"{RELEASE}-modeldeploy"


def container(*args: str) -> dict[str, Any]:
    pod = one(render(*args), "Deployment", FULLNAME)["spec"]["template"]["spec"]
    [operator] = pod["containers"]
    return dict(operator)


def pod_spec(*args: str) -> dict[str, Any]:
    return dict(one(render(*args), "Deployment", FULLNAME)["spec"]["template"]["spec"])


def test_the_operator_runs_as_non_root_with_a_read_only_root_and_no_capabilities() -> None:
    pod = pod_spec()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container()["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == 65532
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}


def test_a_writable_tmp_is_mounted_because_the_root_is_read_only() -> None:
    pod = pod_spec()
    assert {"name": "tmp", "mountPath": "/tmp"} in container()["volumeMounts"]
    [tmp] = [v for v in pod["volumes"] if v["name"] == "tmp"]
    assert "emptyDir" in tmp


def test_liveness_and_readiness_probe_the_health_endpoint() -> None:
    operator = container()
    ports = {p["name"]: p["containerPort"] for p in operator["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    for probe in ("livenessProbe", "readinessProbe"):
        assert operator[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_the_image_defaults_to_the_app_version() -> None:
    assert container()["image"] == "ghcr.io/modeldeploy/modeldeploy:0.1.0"
    assert container("--set", "image.tag=sha-1234")["image"].endswith(":sha-1234")


def test_flags_come_from_values() -> None:
    assert container()["args"] == [
        "--metrics-port=8080",
        "--health-port=8081",
        "--bind-address=0.0.0.0",
        "--log-format=json",
        "--workers=16",
        "--resync=300",
        "--config=/etc/modeldeploy/config.yaml",
        "--io-workers=32",
        "--io-per-deployment=2",
        "--io-per-namespace=4",
        "--retry-base=1",
        "--retry-max=120",
    ]
    args = container(
        *NAMESPACED,
        "--set",
        "prometheusUrl=http://prometheus.monitoring:9090,logFormat=text,peering.enabled=true,replicas=2",
        "--set",
        "extraArgs={--workers=8}",
    )["args"]
    assert args[3] == "--log-format=text"
    assert args[12:] == [
        "--namespace=a",
        "--namespace=b",
        "--prometheus-url=http://prometheus.monitoring:9090",
        f"--peering={FULLNAME}",
        "--workers=8",
    ]


def test_kopf_gets_the_pod_name_as_its_peer_identity() -> None:
    [env] = [e for e in container()["env"] if e["name"] == "POD_ID"]
    assert env["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_the_pod_runs_as_the_chart_service_account() -> None:
    docs = render()
    assert pod_spec()["serviceAccountName"] == FULLNAME
    assert one(docs, "ServiceAccount", FULLNAME)["metadata"]["namespace"] == NAMESPACE


def test_metrics_service_selects_the_operator_pod() -> None:
    docs = render()
    service = one(docs, "Service", f"{FULLNAME}-metrics")
    pod_labels = one(docs, "Deployment", FULLNAME)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]


def test_service_monitor_and_pdb_are_off_by_default_and_render_when_enabled() -> None:
    assert not find(render(), "ServiceMonitor") and not find(render(), "PodDisruptionBudget")
    docs = render("--set", "serviceMonitor.enabled=true,podDisruptionBudget.enabled=true")
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service", f"{FULLNAME}-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert one(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    pdb = one(
        render("--set", "podDisruptionBudget.enabled=true,podDisruptionBudget.minAvailable=1"),
        "PodDisruptionBudget",
    )
    assert pdb["spec"] == {"minAvailable": 1, "selector": pdb["spec"]["selector"]}


def test_dashboard_config_map_carries_the_dashboard_for_the_grafana_sidecar() -> None:
    dashboard = one(render(), "ConfigMap", f"{FULLNAME}-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads(dashboard["data"]["modeldeploy.json"])
    assert shipped == json.loads((CHART / "dashboards" / "modeldeploy.json").read_text())
    assert not find(render("--set", "dashboard.enabled=false"), "ConfigMap", f"{FULLNAME}-dashboard")


def test_the_operator_reads_its_config_from_a_config_map_and_restarts_when_it_changes() -> None:
    def pod(*args: str) -> dict[str, Any]:
        return one(render(*args), "Deployment")["spec"]["template"]  # type: ignore[no-any-return]

    config = one(render(), "ConfigMap", f"{FULLNAME}-config")
    assert config["data"]["config.yaml"] == "metricProviders: []\ninlineProviders: false\n"
    mounted = pod()["spec"]["volumes"][1]
    assert mounted == {"name": "config", "configMap": {"name": f"{FULLNAME}-config"}}
    allowed = pod("--set", "egress.allow={10.1.0.0/16}")["metadata"]["annotations"]["checksum/config"]
    assert allowed != pod()["metadata"]["annotations"]["checksum/config"]
    env = {e["name"]: e.get("valueFrom") for e in container()["env"]}
    assert env["MODELDEPLOY_OPERATOR_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_every_object_carries_the_chart_labels() -> None:
    for doc in render(*NAMESPACED):
        if doc["kind"] == "CustomResourceDefinition":
            continue
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE, doc["metadata"]["name"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
