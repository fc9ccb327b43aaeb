"""argocd/*.lua in Argo CD's own Lua machinery against ModelDeployments recorded live, phase by phase.

The unit tables (tests/unit/test_argocd_health.py, test_argocd_actions.py)
cover every phase with written fixtures; this test records real objects as the
operator leaves them, checks the health Argo CD would show and the actions it
would offer for each, and sends an action's patch, as Argo CD computes it, to
the API server for the operator to carry out.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import argocd_vm
from kubetest import Release, apply, fraud, get, patch_action, wait_for, wait_phase
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


def manifest(version: str, **spec: Any) -> dict[str, Any]:
    return fraud(version, replicas=1, **spec)


def test_health_and_actions_of_live_objects_in_each_phase(cluster: Any, namespace: str) -> None:
    vm = argocd_vm
    argo = vm.ArgoCD()
    recorded: dict[str, dict[str, Any]] = {}
    offered: dict[str, set[str]] = {}

    def record(label: str) -> dict[str, str]:
        obj = get(cluster, namespace, "modeldeployment", "fraud")
        assert obj is not None
        recorded[label] = obj
        offered[label] = {name for name, entry in argo.discover(obj).items() if not entry["disabled"]}
        for action in offered[label]:
            status_patch, main_patch = vm.argocd_patches(obj, argo.act(action, json.loads(json.dumps(obj))))
            assert main_patch is None and set(status_patch["status"]) == {"action"}, (label, action)
        health: dict[str, str] = argo.health(obj)
        return health

    def run_action(action: str) -> None:
        """What Argo CD does for the button: run the Lua, send the status part of the patch."""
        live = get(cluster, namespace, "modeldeployment", "fraud")
        assert live is not None
        status_patch, main_patch = vm.argocd_patches(live, argo.act(action, json.loads(json.dumps(live))))
        assert main_patch is None
        patch_action(cluster, namespace, status_patch["status"]["action"])

    canary = {"canary": {"steps": [{"weight": 20}]}}
    apply(cluster, namespace, manifest("1.0.0", strategy=canary))
    wait_phase(cluster, namespace, "fraud", "Stable")
    assert record("stable")["status"] == "Healthy"

    apply(cluster, namespace, manifest("2.0.0", strategy=canary))
    wait_for(
        "canary waiting for promote",
        lambda: (
            "waiting for promote"
            in (get(cluster, namespace, "modeldeployment", "fraud") or {})
            .get("status", {})
            .get("message", "")
        ),
    )
    assert record("canary-waiting")["status"] in ("Progressing", "Suspended")
    assert {"promote", "promote-full", "abort"} <= offered["canary-waiting"]

    run_action("abort")
    wait_phase(cluster, namespace, "fraud", "RolledBack")
    assert record("rolled-back")["status"] == "Degraded"
    assert "retry" in offered["rolled-back"]

    apply(cluster, namespace, manifest("3.0.0", strategy=canary, paused=True))
    wait_phase(cluster, namespace, "fraud", "Paused")
    assert record("paused")["status"] == "Suspended"

    apply(
        cluster,
        namespace,
        manifest("3.0.0", analysis={"metrics": [{"name": "e", "query": "x{{nope}}", "max": 1}]}),
    )
    wait_phase(cluster, namespace, "fraud", "Invalid")
    assert record("invalid")["status"] == "Degraded"

    # A spec change the operator has not observed yet is Progressing, whatever the phase says.
    stale = json.loads(json.dumps(recorded["stable"]))
    stale["metadata"]["generation"] = stale["status"]["observedGeneration"] + 1
    assert argo.health(stale)["status"] == "Progressing"


def test_promote_full_and_undo_from_argocd_reach_the_operator(cluster: Any, namespace: str) -> None:
    vm = argocd_vm
    argo = vm.ArgoCD()

    def stable_version() -> str | None:
        obj = get(cluster, namespace, "modeldeployment", "fraud") or {}
        return ((obj.get("status") or {}).get("stable") or {}).get("version")

    def run_action(action: str) -> None:
        live = get(cluster, namespace, "modeldeployment", "fraud")
        assert live is not None
        assert not argo.discover(live)[action]["disabled"], (action, live.get("status"))
        status_patch, main_patch = vm.argocd_patches(live, argo.act(action, json.loads(json.dumps(live))))
        assert main_patch is None
        patch_action(cluster, namespace, status_patch["status"]["action"])

    canary = {"canary": {"steps": [{"weight": 20}, {"weight": 50}]}}
    apply(cluster, namespace, manifest("1.0.0", strategy=canary))
    wait_phase(cluster, namespace, "fraud", "Stable")
    apply(cluster, namespace, manifest("2.0.0", strategy=canary))
    wait_for(
        "canary waiting for promote",
        lambda: (
            "waiting for promote"
            in (get(cluster, namespace, "modeldeployment", "fraud") or {})
            .get("status", {})
            .get("message", "")
        ),
    )
    run_action("promote-full")  # skips the second step
    wait_for("2.0.0 stable after promote-full", lambda: stable_version() == "2.0.0")

    run_action("undo")  # no target: the revision promoted before, 1.0.0
    wait_for("1.0.0 stable again after undo", lambda: stable_version() == "1.0.0")
