"""A watch gap: a list replaces the cache's view, so a child deleted in the gap does not stay forever."""

from __future__ import annotations

from typing import Any, cast

from modeldeploy.kube.client import KubeClient
from modeldeploy.kube.kinds import DEPLOYMENT, MODEL_DEPLOYMENT, SERVICE
from modeldeploy.kube.store import Store
from modeldeploy.reconcile.relist import ListingWatch, relist

OURS = {"app.kubernetes.io/managed-by": "modeldeploy"}


def obj(kind: str, name: str, version: int, namespace: str = "risk", owner: str = "fraud") -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": str(version),
            "labels": {**OURS, "modeldeploy.io/name": owner},
        },
    }


def test_a_child_deleted_during_the_gap_leaves_the_cache_when_the_list_comes() -> None:
    store = Store()
    store.put(obj("Deployment", "fraud-1", 10))
    store.put(obj("Deployment", "fraud-2", 11))
    removed = store.replace("Deployment", [obj("Deployment", "fraud-1", 12)], "20", labels=OURS)
    assert [o["metadata"]["name"] for o in removed] == ["fraud-2"]
    assert [c["metadata"]["name"] for c in store.children("risk", "fraud")] == ["fraud-1"]
    assert store.get("Deployment", "risk", "fraud-1")["metadata"]["resourceVersion"] == "12"  # type: ignore[index]


def test_an_object_newer_than_the_list_stays() -> None:
    store = Store()
    store.put(obj("Deployment", "fraud-3", 25))  # its ADDED event came after the list was taken
    store.put(obj("Deployment", "fraud-1", 30))
    assert store.replace("Deployment", [obj("Deployment", "fraud-1", 12)], "20", labels=OURS) == []
    assert store.get("Deployment", "risk", "fraud-3") is not None
    assert store.get("Deployment", "risk", "fraud-1")["metadata"]["resourceVersion"] == "30"  # type: ignore[index]


def test_the_list_replaces_only_its_own_scope() -> None:
    store = Store()
    store.put(obj("Deployment", "fraud-1", 10))
    store.put(obj("Deployment", "other-1", 10, namespace="payments", owner="other"))
    store.put(obj("Service", "fraud", 10))
    store.put(obj("Deployment", "fraud-9", 10, owner="fraud-two"))
    store.replace("Deployment", [], "20", namespace="risk", labels={**OURS, "modeldeploy.io/name": "fraud"})
    assert store.get("Deployment", "risk", "fraud-1") is None
    assert store.get("Deployment", "payments", "other-1") is not None  # other namespace
    assert store.get("Service", "risk", "fraud") is not None  # other kind
    assert store.get("Deployment", "risk", "fraud-9") is not None  # other owner


class Lister:
    """Answers one list, as the API server would, and records what was asked."""

    def __init__(self, items: list[dict[str, Any]], version: str) -> None:
        self.items, self.version = items, version
        self.asked: list[tuple[str, str | None, str | None]] = []

    def list_with_version(
        self, kind: Any, namespace: str | None = None, label_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        self.asked.append((kind.plural, namespace, label_selector))
        return [{k: v for k, v in item.items() if k != "kind"} for item in self.items], self.version


def test_relist_names_the_owners_whose_children_went_and_asks_only_for_ours() -> None:
    store = Store()
    store.put(obj("Service", "fraud-candidate", 5))
    store.put(obj("Service", "loan", 6, namespace="credit", owner="loan"))
    lister = Lister([obj("Service", "loan", 6, namespace="credit", owner="loan")], "40")
    owners = relist(cast(KubeClient, lister), store, SERVICE)
    assert owners == {("risk", "fraud")}
    assert lister.asked == [("services", None, "app.kubernetes.io/managed-by=modeldeploy")]
    assert store.get("Service", "risk", "fraud-candidate") is None
    assert store.get("Service", "credit", "loan")["kind"] == "Service"  # type: ignore[index]


def test_cleanup_relists_one_owners_children() -> None:
    store = Store()
    store.put(obj("Deployment", "fraud-1", 5))
    lister = Lister([], "40")
    assert relist(cast(KubeClient, lister), store, DEPLOYMENT, "risk", "fraud") == {("risk", "fraud")}
    assert lister.asked == [
        ("deployments", "risk", "app.kubernetes.io/managed-by=modeldeploy,modeldeploy.io/name=fraud")
    ]
    assert store.children("risk", "fraud") == []


def test_a_listing_after_the_first_is_noticed_once() -> None:
    now = [0.0]
    watch = ListingWatch(gap=5, clock=lambda: now[0])
    assert not watch.saw("Deployment", None)  # start-up listing
    now[0] = 0.1
    assert not watch.saw("Deployment", None)
    now[0] = 60
    assert not watch.saw("Deployment", "MODIFIED")  # streaming
    now[0] = 400
    assert watch.saw("Deployment", None)  # kopf listed again after a 410
    now[0] = 400.2
    assert not watch.saw("Deployment", None)  # the same listing
    assert watch.saw("Service", None)  # nothing of ours to list at start-up; listed again now
    assert not watch.saw("Service", None)


def test_a_model_deployment_deleted_in_a_gap_leaves_the_cache_and_is_reconciled_to_be_forgotten() -> None:
    store = Store()
    store.put(
        {
            "kind": "ModelDeployment",
            "metadata": {"name": "fraud", "namespace": "risk", "resourceVersion": "3"},
        }
    )
    store.put(
        {"kind": "ModelDeployment", "metadata": {"name": "loan", "namespace": "risk", "resourceVersion": "4"}}
    )
    lister = Lister([{"kind": "ModelDeployment", "metadata": {"name": "loan", "namespace": "risk"}}], "9")
    assert relist(cast(KubeClient, lister), store, MODEL_DEPLOYMENT) == {("risk", "fraud")}
    assert lister.asked == [("modeldeployments", None, None)]  # ModelDeployments carry no label of ours
    assert [key[2] for key in store.keys("ModelDeployment")] == ["loan"]
