"""The operator's own finalizer: added before any child, removed once a deleted ModelDeployment has none.

The API server is a fake here that keeps the rules that matter: a merge patch
carrying a resourceVersion is refused (409) unless it is the stored one, and no
finalizer may be added to an object being deleted. The integration tests
(test_reconciler.py, test_namespace_deletion.py) run the same on a real one.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from reconcile_fakes import BODY, NOW, Measurer

from modeldeploy.kube.apply import Actor
from modeldeploy.kube.client import ApiError, Kind
from modeldeploy.kube.store import Store
from modeldeploy.plan.inputs import Subject
from modeldeploy.plan.outputs import FINALIZER, Plan
from modeldeploy.reconcile import reconciler as module
from modeldeploy.reconcile.reconciler import Reconciler
from modeldeploy.reconcile.relist import CLEANUP_RELIST_SECONDS

THEIRS = "example.com/theirs"


class Server:
    def __init__(self, body: dict[str, Any] | None) -> None:
        self.body = copy.deepcopy(body)
        self.patches: list[dict[str, Any]] = []
        self.gets = 0
        self.lists: list[tuple[str, str | None]] = []
        self.deleted: list[tuple[str, str]] = []
        self.applied: list[str] = []

    def merge_patch(
        self, kind: Kind, namespace: str, name: str, patch: dict[str, Any], subresource: str = ""
    ) -> dict[str, Any]:
        assert kind.kind == "ModelDeployment" and not subresource
        self.patches.append(copy.deepcopy(patch))
        if self.body is None:
            raise ApiError(404, "NotFound", "gone")
        meta, wanted = self.body["metadata"], patch["metadata"]
        if wanted.get("resourceVersion") not in (None, meta["resourceVersion"]):
            raise ApiError(409, "Conflict", "the object has been modified")
        added = set(wanted["finalizers"] or ()) - set(meta.get("finalizers") or ())
        if meta.get("deletionTimestamp") and added:
            raise ApiError(422, "Invalid", "no new finalizers can be added if the object is being deleted")
        meta["finalizers"] = wanted["finalizers"] or []
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        return copy.deepcopy(self.body)

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        self.gets += 1
        return copy.deepcopy(self.body)

    def write_behind_the_cache(self, **meta: Any) -> None:
        assert self.body is not None
        self.body["metadata"].update(
            meta, resourceVersion=str(int(self.body["metadata"]["resourceVersion"]) + 1)
        )

    def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        self.deleted.append((kind.kind, name))
        return False  # already gone

    def list_with_version(
        self, kind: Kind, namespace: str | None, selector: str | None
    ) -> tuple[list[Any], str]:
        self.lists.append((kind.kind, selector))
        return [], "99"

    def create(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        return body

    def apply(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        self.applied.append(body["metadata"]["name"])
        return {**body, "metadata": {**body["metadata"], "resourceVersion": "7"}}


def model_deployment(finalizers: list[str], deleting: bool = False) -> dict[str, Any]:
    body = copy.deepcopy(BODY)
    body["metadata"].update(resourceVersion="5", finalizers=finalizers)
    if deleting:
        body["metadata"]["deletionTimestamp"] = "2026-11-22T12:00:00Z"
    return body


SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {
        "name": "fraud",
        "namespace": "risk",
        "resourceVersion": "3",
        "labels": {"app.kubernetes.io/managed-by": "modeldeploy", "modeldeploy.io/name": "fraud"},
    },
}


def act(server: Server, cached: dict[str, Any], finalizer: bool) -> tuple[int, Store]:
    """Carry out a plan that adds (and then applies a child) or removes the finalizer."""
    store = Store()
    store.put(copy.deepcopy(cached))
    decided = Plan(finalizer=finalizer, apply=(copy.deepcopy(SERVICE),) if finalizer else ())
    acted = Actor(server, store).act(Subject.from_body(cached), decided, NOW)  # type: ignore[arg-type]
    return acted.wrote, store


def stored_finalizers(store: Store) -> list[str]:
    body = store.get("ModelDeployment", "risk", "fraud")
    assert body is not None
    return list(body["metadata"].get("finalizers") or ())


def test_the_finalizer_is_added_beside_everyone_elses_conditional_on_the_version_read() -> None:
    server = Server(model_deployment([THEIRS]))
    wrote, store = act(server, model_deployment([THEIRS]), finalizer=True)
    assert wrote == 2 and server.applied == ["fraud"]  # the finalizer, then the child
    assert server.patches == [{"metadata": {"finalizers": [THEIRS, FINALIZER], "resourceVersion": "5"}}]
    assert stored_finalizers(store) == [THEIRS, FINALIZER]  # the answer is in the cache


def test_only_the_operators_finalizer_is_removed() -> None:
    body = model_deployment([THEIRS, FINALIZER], deleting=True)
    server = Server(body)
    wrote, store = act(server, body, finalizer=False)
    assert wrote == 1 and server.body is not None
    assert server.body["metadata"]["finalizers"] == [THEIRS]
    assert stored_finalizers(store) == [THEIRS]


def test_the_last_finalizer_removed_leaves_none() -> None:
    body = model_deployment([FINALIZER], deleting=True)
    server = Server(body)
    act(server, body, finalizer=False)
    assert server.patches[0]["metadata"]["finalizers"] is None


def test_a_cache_behind_the_server_reads_once_and_patches_from_what_the_server_holds() -> None:
    cached = model_deployment([])
    server = Server(cached)
    server.write_behind_the_cache(finalizers=[THEIRS])  # someone added theirs; the watch has not said
    wrote, store = act(server, cached, finalizer=True)
    assert wrote == 2 and server.gets == 1
    assert server.body is not None and server.body["metadata"]["finalizers"] == [THEIRS, FINALIZER]
    assert stored_finalizers(store) == [THEIRS, FINALIZER]


def test_a_second_conflict_is_raised_for_the_work_queue_to_retry() -> None:
    cached = model_deployment([])
    server = Server(cached)
    server.write_behind_the_cache(finalizers=[THEIRS])
    server.get = lambda *_: cached  # type: ignore[method-assign,assignment]  # a read still behind
    with pytest.raises(ApiError) as raised:
        act(server, cached, finalizer=True)
    assert raised.value.conflict


def test_nothing_is_added_to_an_object_whose_deletion_began_meanwhile() -> None:
    cached = model_deployment([])
    server = Server(cached)
    server.write_behind_the_cache(deletionTimestamp="2026-11-22T12:00:01Z")
    wrote, _ = act(server, cached, finalizer=True)
    assert wrote == 0 and len(server.patches) == 1  # the conditional patch was refused; no second try
    assert server.applied == []  # and no child is created for it


def test_an_object_already_gone_costs_nothing_more() -> None:
    server = Server(None)
    wrote, _ = act(server, model_deployment([FINALIZER], deleting=True), finalizer=False)
    assert wrote == 0


def test_a_deletion_whose_last_child_went_in_a_watch_gap_lists_it_and_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cache still holds a Service the server no longer has, and no DELETED event will come."""
    clock = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    body = model_deployment([FINALIZER], deleting=True)
    server, store = Server(body), Store()
    store.put(copy.deepcopy(body))
    store.put(copy.deepcopy(SERVICE))
    reconcile = Reconciler(server, store, Measurer(), clock=lambda: NOW)  # type: ignore[arg-type]

    requeue = reconcile(("risk", "fraud"))
    assert server.deleted == [("Service", "fraud")] and server.lists == []  # not listed at once
    assert requeue is not None and requeue <= CLEANUP_RELIST_SECONDS
    assert server.body is not None and server.body["metadata"]["finalizers"] == [FINALIZER]

    clock[0] += CLEANUP_RELIST_SECONDS
    reconcile(("risk", "fraud"))
    assert server.lists == [("Service", "app.kubernetes.io/managed-by=modeldeploy,modeldeploy.io/name=fraud")]
    assert server.body["metadata"]["finalizers"] == []  # released
