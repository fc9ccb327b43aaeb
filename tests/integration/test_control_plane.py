"""The local control plane is a real one: pods get scheduled and become Ready,
third-party route CRDs accept what the operator will write, and Prometheus
scrapes what a test exports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modeldeploy.plan.inputs import RevisionState, current_replica_set
from modeldeploy_dev import binaries
from modeldeploy_dev.cluster import LocalCluster
from modeldeploy_dev.metrics import Exporter, wait_for_value
from modeldeploy_dev.processes import listening_addresses, pid_alive, wait_until


def _json(cluster: LocalCluster, *args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cluster.kubectl(*args, "-o", "json").stdout)


def test_deployment_with_three_replicas_gets_three_ready_pods_on_kwok_nodes(
    cluster: LocalCluster, namespace: str
) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "model", "namespace": namespace},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "model"}},
            "template": {
                "metadata": {"labels": {"app": "model"}},
                "spec": {"containers": [{"name": "server", "image": "example.invalid/model:1"}]},
            },
        },
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(deployment))
    cluster.kubectl("-n", namespace, "rollout", "status", "deployment/model", "--timeout=60s")

    pods = _json(cluster, "-n", namespace, "get", "pods", "-l", "app=model")["items"]
    nodes = {n["metadata"]["name"]: n for n in _json(cluster, "get", "nodes")["items"]}
    assert len(pods) == 3
    for pod in pods:
        ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"
        node = nodes[pod["spec"]["nodeName"]]
        assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"


def test_a_pod_annotated_unready_loses_readiness_and_regains_it(
    cluster: LocalCluster, namespace: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "flaky", "namespace": namespace},
        "spec": {"containers": [{"name": "server", "image": "example.invalid/model:1"}]},
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(pod))
    cluster.kubectl("-n", namespace, "wait", "--for=condition=Ready", "pod/flaky", "--timeout=30s")
    cluster.kubectl("-n", namespace, "annotate", "pod/flaky", "kwok.modeldeploy.io/unready=true")
    cluster.kubectl("-n", namespace, "wait", "--for=condition=Ready=false", "pod/flaky", "--timeout=30s")
    cluster.kubectl("-n", namespace, "annotate", "pod/flaky", "kwok.modeldeploy.io/unready-")
    cluster.kubectl("-n", namespace, "wait", "--for=condition=Ready", "pod/flaky", "--timeout=30s")


def test_httproute_with_weighted_backends_and_request_mirror_round_trips(
    cluster: LocalCluster, namespace: str
) -> None:
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "fraud", "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "hostnames": ["fraud.example.com"],
            "rules": [
                {
                    "backendRefs": [
                        {"name": "fraud", "port": 8080, "weight": 75},
                        {"name": "fraud-candidate", "port": 8080, "weight": 25},
                    ],
                    "filters": [
                        {
                            "type": "RequestMirror",
                            "requestMirror": {
                                "backendRef": {"name": "fraud-candidate", "port": 8080},
                                "percent": 50,
                            },
                        }
                    ],
                }
            ],
        },
    }
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=modeldeploy", "-f", "-", input=yaml.safe_dump(route)
    )
    stored = _json(cluster, "-n", namespace, "get", "httproute", "fraud")
    rule = stored["spec"]["rules"][0]
    assert [(b["name"], b["weight"]) for b in rule["backendRefs"]] == [("fraud", 75), ("fraud-candidate", 25)]
    assert rule["filters"][0]["requestMirror"]["percent"] == 50


def test_istio_virtualservice_with_mirror_round_trips(cluster: LocalCluster, namespace: str) -> None:
    service = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "fraud", "namespace": namespace},
        "spec": {
            "hosts": ["fraud.example.com"],
            "http": [
                {
                    "route": [
                        {"destination": {"host": "fraud", "port": {"number": 8080}}, "weight": 90},
                        {"destination": {"host": "fraud-candidate", "port": {"number": 8080}}, "weight": 10},
                    ],
                    "mirror": {"host": "fraud-candidate", "port": {"number": 8080}},
                    "mirrorPercentage": {"value": 100.0},
                }
            ],
        },
    }
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=modeldeploy", "-f", "-", input=yaml.safe_dump(service)
    )
    stored = _json(cluster, "-n", namespace, "get", "virtualservice", "fraud")
    http = stored["spec"]["http"][0]
    assert [r["weight"] for r in http["route"]] == [90, 10]
    assert http["mirror"]["host"] == "fraud-candidate"
    assert cluster.kubectl("get", "crd", "destinationrules.networking.istio.io").returncode == 0


def test_prometheus_returns_a_value_a_test_exporter_set(cluster: LocalCluster, prometheus: str) -> None:
    with Exporter(cluster.scrape_targets_dir, labels={"suite": "control-plane"}) as exporter:
        exporter.set("modeldeploy_test_error_rate", 0.25, revision="fraud-3-2-0-abc")
        seen = wait_for_value(
            prometheus,
            'modeldeploy_test_error_rate{revision="fraud-3-2-0-abc",suite="control-plane"}',
            lambda v: v == 0.25,
        )
        assert seen == 0.25
        exporter.set("modeldeploy_test_error_rate", 0.5, revision="fraud-3-2-0-abc")
        assert wait_for_value(prometheus, "modeldeploy_test_error_rate", lambda v: v == 0.5) == 0.5


def test_binaries_are_cached_so_a_second_run_builds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_build(*args: object, **kwargs: object) -> float:
        raise AssertionError("a Go build ran although the cache holds every binary")

    monkeypatch.setattr(binaries, "build_component", no_build)
    found = binaries.ensure_binaries()
    versions = subprocess.run([str(found["kube-apiserver"]), "--version"], capture_output=True, text=True)
    assert binaries.KUBERNETES_VERSION in versions.stdout
    etcd = subprocess.run([str(found["etcd"]), "--version"], capture_output=True, text=True)
    assert binaries.ETCD_VERSION.lstrip("v") in etcd.stdout


def test_cluster_up_prints_kubeconfig_and_down_leaves_no_process(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    if not getattr(cluster, "local", False):
        pytest.skip("starts a second local control plane")
    state = tmp_path / "second"
    cli = [sys.executable, "-m", "modeldeploy_dev.cli"]
    up = subprocess.run(
        [*cli, "up", "--state-dir", str(state), "--nodes", "2"], capture_output=True, text=True, timeout=300
    )
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        lines = up.stdout.strip().splitlines()
        assert lines[-1] == f"KUBECONFIG={state.resolve() / 'kubeconfig'}"
        assert lines[-2].startswith("PROMETHEUS_URL=http://127.0.0.1:")
        processes = json.loads((state / "processes.json").read_text())
        pids = [p["pid"] for p in processes]
        assert [p["name"] for p in processes] == [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
            "prometheus",
        ]
        kubectl = json.loads((state / "cluster.json").read_text())["binaries"]["kubectl"]
        nodes = subprocess.run(
            [kubectl, "--kubeconfig", str(state / "kubeconfig"), "get", "nodes", "-o", "json"],
            capture_output=True,
            text=True,
            check=True,
        )
        items = json.loads(nodes.stdout)["items"]
        assert len(items) == 2
        for node in items:
            ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
            assert ready["status"] == "True"
    finally:
        down = subprocess.run(
            [*cli, "down", "--state-dir", str(state), "--keep"], capture_output=True, text=True, timeout=120
        )
    assert down.returncode == 0, down.stderr
    assert [pid for pid in pids if pid_alive(pid)] == []
    leftovers = [
        proc.name
        for proc in Path("/proc").iterdir()
        if proc.name.isdigit() and _cmdline_mentions(proc, str(state.resolve())) and pid_alive(int(proc.name))
    ]
    assert leftovers == []


def _cmdline_mentions(proc: Path, text: str) -> bool:
    try:
        return text in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False


def test_every_component_binds_loopback_only(cluster: LocalCluster) -> None:
    if not getattr(cluster, "local", False):
        pytest.skip("inspects the local control plane's sockets")
    pids = {p.pid for p in cluster.table.processes}  # type: ignore[union-attr]
    wait_until("listeners", lambda: bool(listening_addresses(pids)), 10)
    addresses = listening_addresses(pids)
    assert addresses, "found no listening sockets of the control plane"
    assert {address for address, _ in addresses} <= {"127.0.0.1"}, addresses


def test_a_replica_set_stands_for_its_deployment_only_while_it_holds_the_current_template(
    cluster: LocalCluster, namespace: str
) -> None:
    """What the operator reads of a ReplicaSet, checked on the deployment controller's own objects:
    a ReplicaSet current_replica_set picks always holds the Deployment's template, through a rollout."""

    def template(version: str) -> dict:  # type: ignore[type-arg]
        return {
            "metadata": {"labels": {"app": "rs-model"}},
            "spec": {"containers": [{"name": "server", "image": f"example.invalid/model:{version}"}]},
        }

    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "rs-model", "namespace": namespace, "labels": {"app": "rs-model"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "rs-model"}}, "template": template("1")},
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(deployment))
    cluster.kubectl("-n", namespace, "rollout", "status", "deployment/rs-model", "--timeout=60s")

    def sample() -> tuple[dict, list[dict]]:  # type: ignore[type-arg]
        listed = _json(cluster, "-n", namespace, "get", "deployment,replicaset", "-l", "app=rs-model")[
            "items"
        ]
        [found] = [o for o in listed if o["kind"] == "Deployment"]
        return found, [o for o in listed if o["kind"] == "ReplicaSet"]

    found, replica_sets = sample()
    standing = current_replica_set(found, replica_sets)
    assert standing is not None
    assert RevisionState.from_deployment(found, replica_sets).ready == 2 == found["status"]["readyReplicas"]

    deployment["spec"]["template"] = template("2")
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(deployment))
    picked: set[str] = set()
    for _ in range(200):
        found, replica_sets = sample()
        standing = current_replica_set(found, replica_sets)
        if standing is not None:
            picked.add(standing["metadata"]["name"])
            held = standing["spec"]["template"]
            assert held["spec"] == found["spec"]["template"]["spec"]
            assert RevisionState.from_deployment(found, replica_sets).ready == standing["status"].get(
                "readyReplicas", 0
            )
        status = found.get("status") or {}
        if (
            status.get("observedGeneration") == found["metadata"]["generation"]
            and status.get("updatedReplicas") == 2
            and status.get("readyReplicas") == 2
            and status.get("replicas") == 2
            and standing is not None
        ):
            break
    else:
        raise AssertionError("the rollout to template 2 did not finish")
    assert standing is not None and standing["metadata"]["name"] not in {
        r["metadata"]["name"]
        for r in replica_sets
        if r["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1")
    }
    assert len(picked) >= 1
