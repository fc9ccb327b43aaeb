"""What the planner reads of a Deployment: RevisionState.from_deployment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from modeldeploy.kube.store import Store
from modeldeploy.plan.inputs import FAILURE_LIMIT, RevisionState, template_digest


def deployment(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "fraud-2-0-0-abcde", "generation": 3},
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": 3,
            "replicas": 1,
            "readyReplicas": 1,
            "updatedReplicas": 1,
            "availableReplicas": 1,
            "conditions": list(conditions),
        },
    }


QUOTA = 'pods "fraud-2-0-0-abcde-x" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=2'


@pytest.mark.parametrize(
    ("conditions", "failure"),
    [
        ((), None),
        (({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": QUOTA},), QUOTA),
        (({"type": "ReplicaFailure", "status": "False", "message": QUOTA},), None),
        (({"type": "ReplicaFailure", "status": "True"},), "pods cannot be created"),
        (
            ({"type": "ReplicaFailure", "status": "True", "message": "x" * 5000},),
            "x" * FAILURE_LIMIT,
        ),
    ],
    ids=["none", "quota", "cleared", "no-message", "long"],
)
def test_the_replica_failure_condition_is_why_pods_cannot_be_created(
    conditions: tuple[dict[str, Any], ...], failure: str | None
) -> None:
    state = RevisionState.from_deployment(deployment(*conditions))
    assert state.failure == failure
    assert (state.replicas, state.ready, state.current, state.deadline_exceeded) == (2, 1, True, False)


def template(image: str = "2") -> dict[str, Any]:
    return {
        "metadata": {"creationTimestamp": None, "labels": {"app": "fraud", "version": image}},
        "spec": {"containers": [{"name": "model", "image": f"registry.example/fraud:{image}"}]},
    }


def lagging(observed: int = 3, revision: str | None = "2") -> dict[str, Any]:
    """The Deployment as the deployment controller last wrote it: no replica Ready yet."""
    annotations = {"deployment.kubernetes.io/revision": revision} if revision else {}
    return {
        "metadata": {
            "name": "fraud-2-0-0-abcde",
            "uid": "d-uid",
            "generation": 3,
            "annotations": annotations,
        },
        "spec": {"replicas": 2, "template": template()},
        "status": {"observedGeneration": observed, "replicas": 2, "readyReplicas": 0, "updatedReplicas": 2},
    }


def rs(
    image: str = "2", ready: int = 2, pods: int = 2, uid: str = "d-uid", observed: int = 1
) -> dict[str, Any]:
    """A ReplicaSet as the deployment controller makes it: the template copied, with its hash label."""
    held = template(image)
    held["metadata"]["labels"]["pod-template-hash"] = f"hash{image}"
    return {
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"fraud-2-0-0-abcde-hash{image}",
            "namespace": "risk",
            "generation": 1,
            "annotations": {"deployment.kubernetes.io/revision": image},
            "ownerReferences": [
                {"kind": "Deployment", "name": "fraud-2-0-0-abcde", "uid": uid, "controller": True}
            ],
        },
        "spec": {"replicas": pods, "template": held},
        "status": {
            "observedGeneration": observed,
            "replicas": pods,
            "readyReplicas": ready,
            "availableReplicas": ready,
        },
    }


def cached(replica_set: dict[str, Any]) -> dict[str, Any]:
    """The ReplicaSet as the operator's cache keeps it (a digest instead of its template)."""
    store = Store()
    store.put(replica_set)
    [kept] = store.replica_sets("risk", "fraud-2-0-0-abcde")
    assert "template" not in kept["spec"]
    return kept


@pytest.mark.parametrize("keep", [lambda r: r, cached], ids=["as-listed", "as-cached"])
def test_pod_counts_come_from_the_current_replica_set_before_the_deployment_status_copies_them(
    keep: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    state = RevisionState.from_deployment(lagging(), [keep(rs())])
    assert (state.ready, state.available, state.updated) == (2, 2, 2)
    assert state.serves(2)
    # and a replica that stops being Ready shows there first, too
    assert (
        RevisionState.from_deployment(
            {**lagging(), "status": {**lagging()["status"], "readyReplicas": 2}}, [keep(rs(ready=1))]
        ).ready
        == 1
    )


@pytest.mark.parametrize("keep", [lambda r: r, cached], ids=["as-listed", "as-cached"])
def test_a_new_deployment_whose_status_the_controller_has_not_written_yet_is_read_from_its_replica_set(
    keep: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    """The deployment controller's first status write for a new Deployment (the revision annotation)
    and its second (observedGeneration) race: the second is refused and waits in the controller's
    rate-limited queue, half a minute at 300 canaries at once. The ReplicaSet holding the
    Deployment's template has its pods Ready meanwhile."""
    new = lagging(observed=0, revision=None)
    new["status"] = {}
    state = RevisionState.from_deployment(new, [keep(rs())])
    assert state.current and (state.ready, state.updated) == (2, 2)
    assert state.serves(2)
    # with no ReplicaSet holding its template, it waits for the controller's status
    waiting = RevisionState.from_deployment(new, [keep(rs(image="1", pods=0))])
    assert not waiting.current and not waiting.ready_for(1)


@pytest.mark.parametrize(
    ("deployment", "replica_sets"),
    [
        (lagging(), [rs(image="1")]),  # the ReplicaSet of an older template
        (lagging(), [rs(uid="other")]),  # one another Deployment controls
        (lagging(), [rs(observed=0)]),  # its status is older than its spec
        (lagging(), [rs(), rs(image="1", ready=1, pods=1)]),  # the old template's pods still count
        ({**lagging(), "metadata": {**lagging()["metadata"], "uid": None}}, [rs()]),  # no uid to match
    ],
    ids=["old-template", "not-owned", "rs-not-observed", "rolling", "no-uid"],
)
def test_the_deployment_status_is_read_when_no_replica_set_can_stand_for_it(
    deployment: dict[str, Any], replica_sets: list[dict[str, Any]]
) -> None:
    state = RevisionState.from_deployment(deployment, replica_sets)
    assert (state.ready, state.updated) == (0, 2)
    assert not state.serves(2)
    assert not RevisionState.from_deployment(deployment, [cached(r) for r in replica_sets]).serves(2)


def test_the_template_digest_leaves_out_only_the_controllers_hash_label() -> None:
    held = rs()["spec"]["template"]
    assert template_digest(held) == template_digest(template())
    assert template_digest(template("3")) != template_digest(template())
    relabelled = template()
    relabelled["metadata"]["labels"]["team"] = "risk"
    assert template_digest(relabelled) != template_digest(template())


def test_an_old_replica_set_scaled_to_zero_does_not_stop_the_current_one_standing_for_the_deployment() -> (
    None
):
    state = RevisionState.from_deployment(lagging(), [rs(image="1", ready=0, pods=0), rs()])
    assert state.ready == 2
