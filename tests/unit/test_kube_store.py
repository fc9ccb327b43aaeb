"""The Store keeps the newest version of each object: a late watch event never overwrites a newer write."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from hypothesis import given
from json_values import VALUES, is_plain_copy

import modeldeploy.kube.store as store_module
from modeldeploy.kube.store import Store
from modeldeploy.plan.inputs import TEMPLATE_DIGEST, template_digest


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


def labelled(
    kind: str, name: str, owner: str | None, namespace: str = "risk", version: str = "1"
) -> dict[str, Any]:
    labels = {"modeldeploy.io/name": owner} if owner is not None else {}
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": version, "labels": labels},
    }


def family(store: Store, namespace: str, owner: str) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in store.children(namespace, owner)]


def test_children_follow_every_change_of_the_cache() -> None:
    """The owner index stays what a scan of the whole cache would find, through every kind of change."""
    store = Store()
    store.put(labelled("Deployment", "fraud-1", "fraud"))
    store.put(labelled("Service", "fraud", "fraud"))
    store.put(labelled("Service", "fraud", "fraud", namespace="ads"))  # another tenant's, same names
    store.put(labelled("ModelDeployment", "fraud", "fraud"))  # the owner itself is not its own child
    store.put(labelled("Deployment", "spam-1", "spam"))
    store.put(labelled("ConfigMap", "unlabelled", None))
    assert family(store, "risk", "fraud") == [("Deployment", "fraud-1"), ("Service", "fraud")]
    assert family(store, "ads", "fraud") == [("Service", "fraud")]

    store.put(labelled("Deployment", "fraud-1", "spam", version="2"))  # relabelled: changes family
    assert family(store, "risk", "fraud") == [("Service", "fraud")]
    assert family(store, "risk", "spam") == [("Deployment", "spam-1"), ("Deployment", "fraud-1")]
    store.put(labelled("Deployment", "fraud-1", None, version="3"))  # label removed: nobody's
    assert family(store, "risk", "spam") == [("Deployment", "spam-1")]

    store.remove("Service", "risk", "fraud")
    assert family(store, "risk", "fraud") == []
    store.put(labelled("Deployment", "spam-2", "spam", version="5"))
    removed = store.replace(
        "Deployment", [labelled("Deployment", "spam-2", "spam", version="5")], "6", "risk"
    )
    assert sorted(o["metadata"]["name"] for o in removed) == ["fraud-1", "spam-1"]
    assert family(store, "risk", "spam") == [("Deployment", "spam-2")]
    store.clear()
    assert family(store, "ads", "fraud") == []


def replica_set(
    name: str, deployment: str | None, namespace: str = "risk", version: str = "1"
) -> dict[str, Any]:
    references = (
        [{"kind": "Deployment", "name": deployment, "uid": "u", "controller": True}] if deployment else []
    )
    return {
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": version,
            "labels": {"app.kubernetes.io/instance": "fraud"},
            "ownerReferences": references,
            "managedFields": [{"manager": "kube-controller-manager"}],
        },
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "model", "image": "x"}]}}},
        "status": {"replicas": 2, "readyReplicas": 1},
    }


def test_a_deployments_replica_sets_are_found_by_their_controller_and_are_no_ones_children() -> None:
    store = Store()
    store.put(replica_set("fraud-1-abc", "fraud-1"))
    store.put(replica_set("fraud-1-def", "fraud-1"))
    store.put(replica_set("fraud-1-abc", "fraud-1", namespace="ads"))  # another tenant's, same names
    store.put(replica_set("orphan-abc", None))
    assert [r["metadata"]["name"] for r in store.replica_sets("risk", "fraud-1")] == [
        "fraud-1-abc",
        "fraud-1-def",
    ]
    assert store.children("risk", "fraud") == []  # never a child the planner could delete or wait for
    kept = store.replica_sets("risk", "fraud-1")[0]
    template = replica_set("fraud-1-abc", "fraud-1")["spec"]["template"]
    # no pod template, its digest instead: what tells whether it holds its Deployment's template
    assert kept["spec"] == {"replicas": 2, TEMPLATE_DIGEST: template_digest(template)}
    assert "managedFields" not in kept["metadata"]
    store.put(kept)  # put again as it was kept (a relist of what the cache holds): the digest stays
    assert store.replica_sets("risk", "fraud-1")[0]["spec"] == kept["spec"]
    assert kept["status"] == {"replicas": 2, "readyReplicas": 1}

    store.put(replica_set("fraud-1-def", "fraud-2", version="2"))  # adopted by another Deployment
    assert [r["metadata"]["name"] for r in store.replica_sets("risk", "fraud-2")] == ["fraud-1-def"]
    store.remove("ReplicaSet", "risk", "fraud-1-abc")
    assert store.replica_sets("risk", "fraud-1") == []
    store.replace("ReplicaSet", [], "5", namespace="risk")
    assert store.replica_sets("risk", "fraud-2") == []
    assert [r["metadata"]["name"] for r in store.replica_sets("ads", "fraud-1")] == ["fraud-1-abc"]


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet"])
def test_a_pod_template_digest_is_computed_once_per_generation(kind: str, monkeypatch: Any) -> None:
    computed: list[str] = []

    def counting(template: Any) -> str:
        computed.append(template["spec"]["containers"][0]["image"])
        return template_digest(template)

    monkeypatch.setattr(store_module, "template_digest", counting)

    def revision(version: str, generation: int, image: str, uid: str = "u1") -> dict[str, Any]:
        body = deployment(version, replicas=2)
        body["kind"] = kind
        body["metadata"].update(uid=uid, generation=generation)
        body["spec"]["template"] = {"spec": {"containers": [{"name": "model", "image": image}]}}
        body["status"] = {"readyReplicas": int(version) % 3}
        return body

    store = Store()
    for version in ("1", "2", "3"):  # its status moving: the same template
        store.put(revision(version, generation=1, image="a"))
    store.replace(kind, [revision("4", generation=1, image="a")], "4", namespace="risk")
    store.put(revision("5", generation=2, image="b"))  # a new template: a new generation
    store.put(revision("6", generation=1, image="c", uid="u2"))  # deleted and made again
    assert computed == ["a", "b", "c"]
    kept = store.get(kind, "risk", "fraud-1")
    assert kept is not None
    template = revision("6", 1, "c")["spec"]["template"]
    assert kept["spec"][TEMPLATE_DIGEST] == template_digest(template)
    # a Deployment's template stays beside it (the Actor compares it); a ReplicaSet's goes
    assert kept["spec"].get("template") == (template if kind == "Deployment" else None)


def test_the_cache_holds_one_copy_of_each_key_and_short_string_its_objects_repeat() -> None:
    def decoded(name: str) -> dict[str, Any]:  # as a watch event brings it: its own copy of every string
        return cast(
            dict[str, Any],
            json.loads(
                json.dumps(
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "metadata": {"name": name, "namespace": "risk", "labels": {"tier": "model-serving"}},
                        "spec": {"template": {"spec": {"containers": [{"imagePullPolicy": "IfNotPresent"}]}}},
                        "status": {"conditions": [{"type": "Available", "message": "m" * 200}]},
                    }
                )
            ),
        )

    store = Store()
    store.put(decoded("fraud-1"))
    store.put(decoded("fraud-2"))
    one, two = store.get("Deployment", "risk", "fraud-1"), store.get("Deployment", "risk", "fraud-2")
    assert one is not None and two is not None
    key_one = next(k for k in one["metadata"]["labels"])
    key_two = next(k for k in two["metadata"]["labels"])
    assert key_one is key_two  # "tier", once
    assert one["metadata"]["labels"]["tier"] is two["metadata"]["labels"]["tier"]
    pull = one["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"]
    assert pull is two["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"]
    assert next(iter(one["status"]["conditions"][0])) is next(iter(two["status"]["conditions"][0]))
    # A long string is kept as it came: equal, not looked up.
    assert one["status"]["conditions"][0]["message"] == two["status"]["conditions"][0]["message"]


@given(value=VALUES)
def test_the_cache_copies_any_body_into_plain_dicts_and_lists(value: Any) -> None:
    assert is_plain_copy(store_module._plain(value), value)
