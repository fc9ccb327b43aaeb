"""Which watch events of a child call for a reconcile: take_event, and the urgency read with it."""

from __future__ import annotations

import copy
from typing import Any, cast

import pytest

from modeldeploy.kube.client import KubeClient
from modeldeploy.kube.kinds import DEPLOYMENT, REPLICA_SET, SERVICE
from modeldeploy.kube.observe import take_event
from modeldeploy.kube.store import Store
from modeldeploy.reconcile.measure import Measurer
from modeldeploy.reconcile.reconciler import Reconciler

TEMPLATE = {
    "metadata": {"labels": {"modeldeploy.io/instance": "fraud", "modeldeploy.io/revision": "fraud-2"}},
    "spec": {"containers": [{"name": "model", "image": "registry.example/fraud:2"}]},
}


def deployment(version: int, ready: int = 2, **metadata: Any) -> dict[str, Any]:
    """The candidate's Deployment as the deployment controller writes it, at resourceVersion ``version``."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "fraud-2",
            "namespace": "risk",
            "uid": "d-uid",
            "generation": 1,
            "resourceVersion": str(version),
            "labels": {"modeldeploy.io/name": "fraud", "modeldeploy.io/component": "model"},
            **metadata,
        },
        "spec": {"replicas": 2, "template": copy.deepcopy(TEMPLATE)},
        "status": {"observedGeneration": 1, "replicas": 2, "readyReplicas": ready, "updatedReplicas": 2},
    }


def replica_set(version: int, ready: int = 2, **status: Any) -> dict[str, Any]:
    """Its ReplicaSet: the template copied with the controller's hash label."""
    template = copy.deepcopy(TEMPLATE)
    template["metadata"]["labels"]["pod-template-hash"] = "5d8f"
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": "fraud-2-5d8f",
            "namespace": "risk",
            "generation": 1,
            "resourceVersion": str(version),
            "labels": {"modeldeploy.io/instance": "fraud"},
            "ownerReferences": [
                {"kind": "Deployment", "name": "fraud-2", "uid": "d-uid", "controller": True}
            ],
        },
        "spec": {"replicas": 2, "template": template},
        "status": {
            "observedGeneration": 1,
            "replicas": 2,
            "readyReplicas": ready,
            "availableReplicas": ready,
            **status,
        },
    }


def cached(*objects: dict[str, Any]) -> Store:
    store = Store()
    for obj in objects:
        store.put(obj)
    return store


def test_the_deployment_status_copying_its_replica_sets_counts_triggers_nothing_but_is_cached() -> None:
    # The ReplicaSet says 2 Ready (a reconcile read that); the Deployment's status still says 0.
    store = cached(deployment(10, ready=0), replica_set(11, ready=2))
    assert take_event(store, DEPLOYMENT, "MODIFIED", deployment(12, ready=2)) == "unchanged"
    held = store.get("Deployment", "risk", "fraud-2")
    assert held is not None and held["metadata"]["resourceVersion"] == "12"
    # ... and so does the controller's own revision annotation.
    revised = deployment(13, annotations={"deployment.kubernetes.io/revision": "1"})
    assert take_event(store, DEPLOYMENT, "MODIFIED", revised) == "unchanged"


@pytest.mark.parametrize(
    "change",
    ["readiness", "label", "annotation", "spec", "deleting"],
)
def test_a_deployment_change_a_reconcile_reads_is_news(change: str) -> None:
    store = cached(deployment(10, ready=0))  # no ReplicaSet: readiness is the Deployment's own
    new = deployment(11, ready=0)
    if change == "readiness":
        new["status"]["readyReplicas"] = 2
    elif change == "label":
        new["metadata"]["labels"]["team"] = "risk"
    elif change == "annotation":
        new["metadata"]["annotations"] = {"modeldeploy.io/scaled-by": "autoscaler"}
    elif change == "spec":
        new["metadata"]["generation"] = 2
        new["spec"]["replicas"] = 3
    else:
        new["metadata"]["deletionTimestamp"] = "2026-12-01T12:00:00Z"
    assert take_event(store, DEPLOYMENT, "MODIFIED", new) == "news"


def test_a_replica_set_change_in_its_deployments_readiness_is_news_and_others_are_not() -> None:
    store = cached(deployment(10, ready=0), replica_set(11, ready=1))
    assert take_event(store, REPLICA_SET, "MODIFIED", replica_set(12, ready=2)) == "news"
    labelled = replica_set(13, ready=2, fullyLabeledReplicas=2)
    assert take_event(store, REPLICA_SET, "MODIFIED", labelled) == "unchanged"
    held = store.get("ReplicaSet", "risk", "fraud-2-5d8f")
    assert held is not None and held["status"]["fullyLabeledReplicas"] == 2


def test_new_deleted_echoed_and_other_kinds_of_events_are_told_apart() -> None:
    store = cached()
    assert take_event(store, DEPLOYMENT, "ADDED", deployment(10)) == "news"
    assert take_event(store, REPLICA_SET, None, replica_set(11)) == "news"  # a listing
    # A ReplicaSet whose Deployment is not cached yet: news (nothing to compare with).
    orphan = replica_set(12)
    orphan["metadata"]["ownerReferences"][0]["name"] = "fraud-3"
    assert take_event(store, REPLICA_SET, "MODIFIED", orphan) == "news"
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "fraud", "namespace": "risk", "resourceVersion": "13"},
        "spec": {"selector": {"modeldeploy.io/revision": "fraud-1"}},
    }
    assert take_event(store, SERVICE, "ADDED", service) == "news"
    service = {**service, "metadata": {**service["metadata"], "resourceVersion": "14"}}
    assert take_event(store, SERVICE, "MODIFIED", service) == "news"  # only Deployments are compared
    store.put(deployment(15), own=True)
    assert take_event(store, DEPLOYMENT, "MODIFIED", deployment(15)) == "echo"
    # The operator wrote twice (17, then 18): the event of its first write comes after the second.
    store.put(deployment(17, ready=1), own=True)
    store.put(deployment(18, ready=0), own=True)
    assert take_event(store, DEPLOYMENT, "MODIFIED", deployment(17, ready=1)) == "stale"
    held = store.get("Deployment", "risk", "fraud-2")
    assert held is not None and held["metadata"]["resourceVersion"] == "18"
    assert take_event(store, DEPLOYMENT, "MODIFIED", deployment(18, ready=0)) == "echo"
    # Someone else's version equal to the cached one (put by a list): news, it may not have triggered.
    store.put(deployment(19, ready=2))
    assert take_event(store, DEPLOYMENT, "MODIFIED", deployment(19, ready=2)) == "news"
    assert take_event(store, DEPLOYMENT, "DELETED", deployment(16)) == "deleted"
    assert store.get("Deployment", "risk", "fraud-2") is None


def urgent(store: Store) -> bool:
    store.put(
        {
            "apiVersion": "modeldeploy.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "fraud", "namespace": "risk", "resourceVersion": "1"},
            "spec": {"fallback": {"trigger": {}}},
            "status": {"stable": {"revision": "fraud-2"}},
        }
    )
    return Reconciler(cast(KubeClient, None), store, cast(Measurer, None)).urgent(("risk", "fraud"))


def test_a_stable_revision_is_urgent_once_the_replica_set_holding_its_template_has_no_ready_pod() -> None:
    # The ReplicaSet lost its pods; the Deployment's status, not yet copied, still says 2 Ready.
    assert urgent(cached(deployment(10, ready=2), replica_set(11, ready=0)))
    assert not urgent(cached(deployment(10, ready=2), replica_set(11, ready=2)))
    assert urgent(cached(deployment(10, ready=0)))  # no ReplicaSet cached: the Deployment's own count
