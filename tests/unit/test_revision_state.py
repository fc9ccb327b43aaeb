"""What the planner reads of a Deployment: RevisionState.from_deployment."""

from __future__ import annotations

from typing import Any

import pytest

from modeldeploy.plan.inputs import FAILURE_LIMIT, RevisionState


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
        "spec": {"replicas": 2},
        "status": {"observedGeneration": observed, "replicas": 2, "readyReplicas": 0, "updatedReplicas": 2},
    }


def rs(
    revision: str = "2", ready: int = 2, pods: int = 2, uid: str = "d-uid", observed: int = 1
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"fraud-2-0-0-abcde-{revision}",
            "generation": 1,
            "annotations": {"deployment.kubernetes.io/revision": revision},
            "ownerReferences": [
                {"kind": "Deployment", "name": "fraud-2-0-0-abcde", "uid": uid, "controller": True}
            ],
        },
        "spec": {"replicas": pods},
        "status": {
            "observedGeneration": observed,
            "replicas": pods,
            "readyReplicas": ready,
            "availableReplicas": ready,
        },
    }


def test_pod_counts_come_from_the_current_replica_set_before_the_deployment_status_copies_them() -> None:
    state = RevisionState.from_deployment(lagging(), [rs()])
    assert (state.ready, state.available, state.updated) == (2, 2, 2)
    assert state.serves(2)
    # and a replica that stops being Ready shows there first, too
    assert (
        RevisionState.from_deployment(
            {**lagging(), "status": {**lagging()["status"], "readyReplicas": 2}}, [rs(ready=1)]
        ).ready
        == 1
    )


@pytest.mark.parametrize(
    ("deployment", "replica_sets"),
    [
        (lagging(observed=2), [rs()]),  # the controller has not seen the latest template
        (lagging(revision=None), [rs()]),  # nor named its current ReplicaSet
        (lagging(), [rs(revision="1")]),  # the ReplicaSet of an older template
        (lagging(), [rs(uid="other")]),  # one another Deployment controls
        (lagging(), [rs(observed=0)]),  # its status is older than its spec
        (lagging(), [rs(), rs(revision="1", ready=1, pods=1)]),  # the old template's pods still count
    ],
    ids=["deployment-not-observed", "no-revision", "old-template", "not-owned", "rs-not-observed", "rolling"],
)
def test_the_deployment_status_is_read_when_no_replica_set_can_stand_for_it(
    deployment: dict[str, Any], replica_sets: list[dict[str, Any]]
) -> None:
    state = RevisionState.from_deployment(deployment, replica_sets)
    assert (state.ready, state.updated) == (0, 2)
    assert not state.serves(2)


def test_an_old_replica_set_scaled_to_zero_does_not_stop_the_current_one_standing_for_the_deployment() -> (
    None
):
    state = RevisionState.from_deployment(lagging(), [rs(revision="1", ready=0, pods=0), rs()])
    assert state.ready == 2
