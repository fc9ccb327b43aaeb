"""The reconciler against the real control plane, with the operator as users run it: the chart's
pod on the real node (its image, its ServiceAccount). The revisions' pods stay on kwok nodes.

The scenario that kills the operator mid-rollout runs against the host process:
test_reconciler_restart.py.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from reconciler import UNREADY, gateway_manifest, service_revision

from kubetest import (
    Release,
    apply,
    condition,
    event_reasons,
    example,
    get,
    items,
    md_status,
    wait_for,
    wait_phase,
)
from modeldeploy_dev.cluster import LocalCluster

pytestmark = pytest.mark.usefixtures("operator")


@pytest.fixture(scope="module")
def cluster(real_cluster: LocalCluster) -> LocalCluster:
    """This module's scenarios run in the real node's cluster (namespace follows)."""
    return real_cluster


@pytest.fixture(scope="module")
def operator(operator_pod: Release) -> Release:
    """The chart's operator pod instead of the host process."""
    return operator_pod


def revision_of(cluster: Any, namespace: str, name: str) -> str:
    return str(md_status(cluster, namespace, name)["stable"]["revision"])


def assert_no_kopf_annotations(cluster: Any, namespace: str, name: str) -> None:
    obj = get(cluster, namespace, "modeldeployment", name)
    assert obj is not None
    annotations = obj["metadata"].get("annotations", {})
    assert not [key for key in annotations if key.startswith("kopf.zalando.org")], annotations
    assert not [f for f in obj["metadata"].get("finalizers", []) if "kopf" in f]


def test_create_reaches_stable_with_every_serving_object(cluster: Any, namespace: str) -> None:
    apply(cluster, namespace, gateway_manifest())
    status = wait_phase(cluster, namespace, "fraud", "Stable")
    revision = status["stable"]["revision"]
    assert revision.startswith("fraud-3-1-0-")
    assert status["observedGeneration"] == 1
    assert status["traffic"] == [{"revision": revision, "role": "stable", "weight": 100}]
    assert condition(status, "Ready")["status"] == "True"  # type: ignore[index]
    assert condition(status, "Available")["status"] == "True"  # type: ignore[index]
    assert status["history"][-1]["outcome"] == "Promoted"

    deployment = get(cluster, namespace, "deployment", revision)
    assert deployment is not None
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["modeldeploy.io/revision"] == revision
    assert not [k for k in pod_labels if "role" in k]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODEL_URI"] == "s3://models/fraud/3.2.0"
    assert env["MODEL_VERSION"] == "3.1.0" and env["MODEL_NAME"] == "fraud-detector"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/models/fraud-detector/ready"
    assert deployment["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "modeldeploy"

    assert service_revision(cluster, namespace, "fraud") == revision
    assert get(cluster, namespace, "service", "fraud-candidate") is not None
    route = get(cluster, namespace, "httproute", "fraud")
    assert route is not None
    assert [(b["name"], b["weight"]) for b in route["spec"]["rules"][0]["backendRefs"]] == [("fraud", 100)]
    assert route["spec"]["parentRefs"][0]["name"] == "public"
    shown = cluster.kubectl(
        "-n", namespace, "get", "deployment", revision, "-o", "json", "--show-managed-fields"
    )
    managers = {m["manager"] for m in json.loads(shown.stdout)["metadata"]["managedFields"]}
    assert "modeldeploy" in managers
    assert_no_kopf_annotations(cluster, namespace, "fraud")


def test_version_change_moves_traffic_only_after_all_replicas_are_ready(cluster: Any, namespace: str) -> None:
    apply(cluster, namespace, gateway_manifest("3.1.0"))
    old = wait_phase(cluster, namespace, "fraud", "Stable")["stable"]["revision"]

    # The new revision's pods start unready (kwok's stage for the annotation), as a
    # model still loading would.
    manifest = gateway_manifest("3.2.0")
    manifest["spec"]["runtime"]["podTemplate"] = UNREADY
    apply(cluster, namespace, manifest)
    status = wait_phase(cluster, namespace, "fraud", "Progressing")
    new = status["candidate"]["revision"]
    assert new != old
    wait_for(
        "new pods running",
        lambda: len(items(cluster, namespace, "pods", f"modeldeploy.io/revision={new}")) == 2,
    )
    assert service_revision(cluster, namespace, "fraud") == old
    assert md_status(cluster, namespace, "fraud")["stable"]["revision"] == old
    assert get(cluster, namespace, "deployment", old)["spec"]["replicas"] == 2  # type: ignore[index]

    # Readiness arrives pod by pod; traffic moves only when both are Ready.
    pods = items(cluster, namespace, "pods", f"modeldeploy.io/revision={new}")
    cluster.kubectl(
        "-n", namespace, "annotate", "pod", pods[0]["metadata"]["name"], "kwok.modeldeploy.io/unready-"
    )
    wait_for(
        "one pod ready",
        lambda: get(cluster, namespace, "deployment", new)["status"].get("readyReplicas") == 1,
    )
    assert service_revision(cluster, namespace, "fraud") == old
    cluster.kubectl(
        "-n", namespace, "annotate", "pod", pods[1]["metadata"]["name"], "kwok.modeldeploy.io/unready-"
    )

    status = wait_phase(cluster, namespace, "fraud", "Stable")
    assert status["stable"]["revision"] == new
    assert service_revision(cluster, namespace, "fraud") == new
    wait_for(
        "old revision scaled to zero",
        lambda: get(cluster, namespace, "deployment", old)["spec"]["replicas"] == 0,
    )
    outcomes = [(h["revision"], h["outcome"]) for h in status["history"]]
    assert outcomes[-2:] == [(old, "Promoted"), (new, "Promoted")]
    event_reasons(cluster, namespace, "RevisionCreated", "Promoted")


def test_threshold_only_change_starts_no_new_revision(cluster: Any, namespace: str) -> None:
    manifest = example("champion-challenger")
    manifest["spec"].pop("strategy", None)
    apply(cluster, namespace, manifest)
    name = manifest["metadata"]["name"]
    revision = wait_phase(cluster, namespace, name, "Stable")["stable"]["revision"]
    changed = copy.deepcopy(manifest)
    metric = changed["spec"]["analysis"]["metrics"][0]
    metric["max" if "max" in metric else "min"] = 0.5 if "max" in metric else 0.01
    changed["spec"]["analysis"]["interval"] = "30s"
    apply(cluster, namespace, changed)
    wait_for(
        "generation 2 observed", lambda: md_status(cluster, namespace, name).get("observedGeneration") == 2
    )
    status = md_status(cluster, namespace, name)
    assert status["stable"]["revision"] == revision and "candidate" not in status
    assert [d["metadata"]["name"] for d in items(cluster, namespace, "deployments")] == [revision]


def test_candidate_that_never_becomes_ready_is_degraded_and_traffic_never_moves(
    cluster: Any, namespace: str
) -> None:
    apply(cluster, namespace, gateway_manifest("3.1.0", progressDeadline="5s"))
    old = wait_phase(cluster, namespace, "fraud", "Stable")["stable"]["revision"]
    manifest = gateway_manifest("3.2.0", progressDeadline="5s")
    manifest["spec"]["runtime"]["podTemplate"] = UNREADY
    apply(cluster, namespace, manifest)
    status = wait_phase(cluster, namespace, "fraud", "Degraded", timeout=90)
    assert status["stable"]["revision"] == old
    assert "did not get its replicas Ready within 5s" in status["message"]
    assert condition(status, "Degraded")["status"] == "True"  # type: ignore[index]
    assert service_revision(cluster, namespace, "fraud") == old
    route = get(cluster, namespace, "httproute", "fraud")
    assert [b["name"] for b in route["spec"]["rules"][0]["backendRefs"]] == ["fraud"]  # type: ignore[index]
    event_reasons(cluster, namespace, "ProgressDeadlineExceeded")


def test_delete_removes_every_child_and_the_finalizer(cluster: Any, namespace: str) -> None:
    apply(cluster, namespace, gateway_manifest())
    wait_phase(cluster, namespace, "fraud", "Stable")
    obj = get(cluster, namespace, "modeldeployment", "fraud")
    assert obj["metadata"]["finalizers"] == ["modeldeploy.io/cleanup"]  # type: ignore[index]
    cluster.kubectl("-n", namespace, "delete", "modeldeployment", "fraud", "--wait=false")
    wait_for("object gone", lambda: get(cluster, namespace, "modeldeployment", "fraud") is None, timeout=60)
    for kind in ("deployments", "services", "httproutes"):
        assert items(cluster, namespace, kind, "app.kubernetes.io/managed-by=modeldeploy") == []


def test_retire_drains_and_removes_serving_objects_but_keeps_the_record(cluster: Any, namespace: str) -> None:
    apply(cluster, namespace, gateway_manifest())
    revision = wait_phase(cluster, namespace, "fraud", "Stable")["stable"]["revision"]
    apply(cluster, namespace, gateway_manifest(retired=True))
    status = wait_phase(cluster, namespace, "fraud", "Retired")
    wait_for(
        "serving objects removed",
        lambda: (
            not items(cluster, namespace, "deployments")
            and not items(cluster, namespace, "httproutes")
            and not items(cluster, namespace, "services", "app.kubernetes.io/managed-by=modeldeploy")
        ),
    )
    status = md_status(cluster, namespace, "fraud")
    assert status["phase"] == "Retired"
    assert status["history"][-1]["outcome"] == "Retired"
    assert status["history"][-1]["revision"] == revision
    assert_no_kopf_annotations(cluster, namespace, "fraud")


def test_paused_holds_a_new_version_until_resumed(cluster: Any, namespace: str) -> None:
    apply(cluster, namespace, gateway_manifest("3.1.0"))
    old = wait_phase(cluster, namespace, "fraud", "Stable")["stable"]["revision"]
    apply(cluster, namespace, gateway_manifest("3.2.0", paused=True))
    status = wait_phase(cluster, namespace, "fraud", "Paused")
    assert status["stable"]["revision"] == old
    assert [d["metadata"]["name"] for d in items(cluster, namespace, "deployments")] == [old]
    apply(cluster, namespace, gateway_manifest("3.2.0", paused=False))
    status = wait_for(
        "the new version stable",
        lambda: (
            (
                (s := md_status(cluster, namespace, "fraud")).get("phase") == "Stable"
                and s["stable"]["revision"] != old
                and s
            )
            or None
        ),
    )
    assert status["stable"]["version"] == "3.2.0"


def test_hand_deleted_and_hand_edited_children_are_restored(cluster: Any, namespace: str) -> None:
    apply(cluster, namespace, gateway_manifest())
    revision = wait_phase(cluster, namespace, "fraud", "Stable")["stable"]["revision"]

    cluster.kubectl("-n", namespace, "delete", "service", "fraud")
    wait_for("stable Service back", lambda: service_revision(cluster, namespace, "fraud") == revision)

    cluster.kubectl("-n", namespace, "scale", "deployment", revision, "--replicas=5")
    wait_for(
        "replicas restored", lambda: get(cluster, namespace, "deployment", revision)["spec"]["replicas"] == 2
    )

    patch = {"spec": {"rules": [{"backendRefs": [{"name": "elsewhere", "port": 80, "weight": 100}]}]}}
    cluster.kubectl("-n", namespace, "patch", "httproute", "fraud", "--type=merge", "-p", json.dumps(patch))
    wait_for(
        "route restored",
        lambda: (
            [
                b["name"]
                for b in get(cluster, namespace, "httproute", "fraud")["spec"]["rules"][0]["backendRefs"]
            ]
            == ["fraud"]
        ),
    )

    cluster.kubectl("-n", namespace, "delete", "deployment", revision)
    wait_for("Deployment recreated", lambda: get(cluster, namespace, "deployment", revision) is not None)
    wait_phase(cluster, namespace, "fraud", "Stable")


def test_invalid_spec_sets_invalid_phase_and_touches_nothing(cluster: Any, namespace: str) -> None:
    apply(cluster, namespace, gateway_manifest())
    revision = wait_phase(cluster, namespace, "fraud", "Stable")["stable"]["revision"]
    manifest = gateway_manifest(
        analysis={"metrics": [{"name": "err", "query": 'rate(x{pod="{{podName}}"}[1m])', "max": 1}]}
    )
    apply(cluster, namespace, manifest)
    status = wait_phase(cluster, namespace, "fraud", "Invalid")
    invalid = condition(status, "InvalidSpec")
    assert invalid is not None and invalid["status"] == "True"
    assert "podName" in invalid["message"] and "spec.analysis.metrics[0].query" in invalid["message"]
    event_reasons(cluster, namespace, "InvalidSpec")
    assert service_revision(cluster, namespace, "fraud") == revision
    assert [d["metadata"]["name"] for d in items(cluster, namespace, "deployments")] == [revision]
