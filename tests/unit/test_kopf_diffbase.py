"""kopf's diff base: none while no handler reads one; else built from a body without the parts kopf
drops, the same essence, less copied."""

from __future__ import annotations

import copy
from typing import Any

import kopf
import pytest

from modeldeploy.handlers import LeanDiffBaseStorage, build_registry
from modeldeploy.kube.access import Access
from modeldeploy.kube.client import KubeClient
from modeldeploy.settings import OperatorSettings

FIELD = "status.operatorState.lastHandledConfiguration"


def with_a_change_handler() -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    kopf.on.update("modeldeploy.io", "v1alpha1", "modeldeployments", registry=registry)(lambda **_: None)
    return registry


def storage(registry: kopf.OperatorRegistry | None = None) -> LeanDiffBaseStorage:
    return LeanDiffBaseStorage(registry=registry or with_a_change_handler(), field=FIELD)


MODEL_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "modeldeploy.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {
        "name": "fraud",
        "namespace": "risk",
        "uid": "u-1",
        "resourceVersion": "42",
        "generation": 3,
        "labels": {"team": "risk"},
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{...}",
            "owner.example/ticket": "RISK-1",
        },
        "finalizers": ["modeldeploy.io/cleanup"],
        "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
    },
    "spec": {"model": {"name": "fraud", "version": "2.0.0"}, "replicas": 2},
    "status": {
        "history": [{"revision": f"fraud-{i}", "outcome": "Promoted"} for i in range(50)],
        "operatorState": {"lastHandledConfiguration": '{"spec":{}}'},
    },
}

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "fraud-2", "namespace": "risk", "managedFields": [{"manager": "modeldeploy"}]},
    "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "model", "image": "m:2"}]}}},
    "status": {"readyReplicas": 2},
}


@pytest.mark.parametrize(
    "body",
    [
        MODEL_DEPLOYMENT,
        DEPLOYMENT,
        {"metadata": {"name": "bare"}},
        {"kind": "ConfigMap", "data": {"a": "1"}},
        {**DEPLOYMENT, "metadata": {"annotations": {}, "labels": {}}},
    ],
    ids=["ModelDeployment", "Deployment", "metadata only", "no metadata", "empty labels"],
)
def test_the_essence_is_kopfs_own(body: dict[str, Any]) -> None:
    kopfs = kopf.StatusDiffBaseStorage(field=FIELD).build(body=kopf.Body(copy.deepcopy(body)))
    ours = storage().build(body=kopf.Body(copy.deepcopy(body)))
    assert ours == kopfs


def test_a_watched_extra_field_is_kept_as_kopf_keeps_it() -> None:
    fields = ["status.history"]
    kopfs = kopf.StatusDiffBaseStorage(field=FIELD).build(
        body=kopf.Body(MODEL_DEPLOYMENT), extra_fields=fields
    )
    ours = storage().build(body=kopf.Body(MODEL_DEPLOYMENT), extra_fields=fields)
    assert ours == kopfs and "status" in ours


def test_neither_status_nor_managed_fields_are_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    copied: list[Any] = []
    deepcopy = copy.deepcopy

    def counting(value: Any, memo: Any = None) -> Any:
        copied.append(value)
        return deepcopy(value, memo)

    monkeypatch.setattr(copy, "deepcopy", counting)
    storage().build(body=kopf.Body(MODEL_DEPLOYMENT))
    reached = repr(copied)
    assert "fraud-49" not in reached and "kubectl" not in reached.replace("kubectl.kubernetes.io", "")
    assert "2.0.0" in reached  # the spec is copied: it is the essence


@pytest.mark.parametrize("handler", ["none", "daemon"])
def test_with_no_handler_that_reads_a_diff_the_essence_is_empty_and_nothing_is_copied(
    handler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = kopf.OperatorRegistry()
    kopf.on.event("modeldeploy.io", "v1alpha1", "modeldeployments", registry=registry)(lambda **_: None)
    if handler == "daemon":  # a daemon reads the diff (its idling resets on a change): the essence is kopf's
        kopf.daemon("modeldeploy.io", "v1alpha1", "modeldeployments", registry=registry)(lambda **_: None)
    copied: list[Any] = []
    deepcopy = copy.deepcopy
    monkeypatch.setattr(
        copy, "deepcopy", lambda value, memo=None: copied.append(value) or deepcopy(value, memo)
    )
    ours = storage(registry).build(body=kopf.Body(MODEL_DEPLOYMENT))
    if handler == "none":
        assert ours == {} and copied == []
    else:
        assert ours == kopf.StatusDiffBaseStorage(field=FIELD).build(
            body=kopf.Body(copy.deepcopy(MODEL_DEPLOYMENT))
        )


def test_the_operators_registry_has_no_handler_that_reads_a_diff() -> None:
    """What lets its diff base be empty (and kopf never write one onto a user's object)."""
    client = KubeClient(Access(host="https://127.0.0.1:1"))
    registry = build_registry(OperatorSettings(), client)
    assert registry._watching.get_all_handlers()  # the watches are there: the registry is the real one
    assert not registry._changing.get_all_handlers() and not registry._spawning.get_all_handlers()
