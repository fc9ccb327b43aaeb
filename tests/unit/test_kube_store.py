"""The Store keeps the newest version of each object: a late watch event never overwrites a newer write."""

from __future__ import annotations

from typing import Any

from modeldeploy.kube.store import Store


def deployment(version: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "fraud-1",
            "namespace": "risk",
            "resourceVersion": version,
            "labels": {"modeldeploy.io/name": "fraud"},
            "managedFields": [{"manager": "modeldeploy"}],
        },
        "spec": {"replicas": replicas},
    }


def test_a_late_watch_event_does_not_overwrite_the_operators_own_newer_write() -> None:
    store = Store()
    store.put(deployment("10", replicas=0))  # the API server's answer to our scale-down
    store.put(deployment("9", replicas=2))  # the watch event from before it, delivered late
    kept = store.get("Deployment", "risk", "fraud-1")
    assert kept is not None
    assert (kept["metadata"]["resourceVersion"], kept["spec"]["replicas"]) == ("10", 0)


def test_a_newer_version_replaces_the_cached_one() -> None:
    store = Store()
    store.put(deployment("9", replicas=2))
    store.put(deployment("10", replicas=0))  # "10" < "9" as strings: the order is numeric
    kept = store.get("Deployment", "risk", "fraud-1")
    assert kept is not None and kept["spec"]["replicas"] == 0


def test_the_cache_holds_no_managed_fields_and_no_reference_to_the_callers_object() -> None:
    store = Store()
    body = deployment("3", replicas=1)
    store.put(body)
    body["spec"]["replicas"] = 5
    kept = store.get("Deployment", "risk", "fraud-1")
    assert kept is not None and kept["spec"]["replicas"] == 1
    assert "managedFields" not in kept["metadata"]
    assert [o["metadata"]["name"] for o in store.children("risk", "fraud")] == ["fraud-1"]
