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
