"""kopf keeps watching a served namespace until it is gone (handlers.watch_terminating_namespaces_to_the_end).

The events are the ones the API server sends: the namespace controller's first status on a
namespace marked for deletion has conditions, all False, before it deletes anything.
tests/integration/test_namespace_deletion.py deletes such a namespace under a real operator.
"""

from __future__ import annotations

from typing import Any

import pytest
from kopf._cogs.structs import references
from kopf._core.reactor import observation

from modeldeploy.handlers import watch_terminating_namespaces_to_the_end


def namespace_event(kind: str | None, *, deleting: bool, conditions: list[dict[str, str]]) -> Any:
    metadata: dict[str, Any] = {"name": "team-a"}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-02T04:22:59Z"
    status: dict[str, Any] = {"phase": "Terminating" if deleting else "Active"}
    if conditions:
        status["conditions"] = conditions
    return {
        "type": kind,
        "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata, "status": status},
    }


FIRST_TERMINATING_STATUS = [
    {"type": "NamespaceDeletionDiscoveryFailure", "status": "False", "reason": "ResourcesDiscovered"},
    {"type": "NamespaceDeletionContentFailure", "status": "False", "reason": "ContentDeleted"},
]
FINALIZERS_REMAINING = [
    *FIRST_TERMINATING_STATUS,
    {"type": "NamespaceFinalizersRemaining", "status": "True", "reason": "SomeFinalizersRemain"},
]


@pytest.fixture
def insights(monkeypatch: pytest.MonkeyPatch) -> references.Insights:
    # Restored after the test; raises if kopf no longer has the predicate the fix replaces.
    monkeypatch.setattr(observation, "is_deleted", observation.is_deleted)
    watch_terminating_namespaces_to_the_end()
    seen = references.Insights()
    observation.revise_namespaces(
        insights=seen,
        namespaces=["team-a"],
        raw_events=[namespace_event("ADDED", deleting=False, conditions=[])],
    )
    assert seen.namespaces == {"team-a"}
    return seen


@pytest.mark.parametrize("conditions", [FIRST_TERMINATING_STATUS, FINALIZERS_REMAINING])
def test_a_namespace_marked_for_deletion_stays_watched(
    insights: references.Insights, conditions: list[dict[str, str]]
) -> None:
    event = namespace_event("MODIFIED", deleting=True, conditions=conditions)
    observation.revise_namespaces(insights=insights, namespaces=["team-a"], raw_events=[event])
    assert insights.namespaces == {"team-a"}


def test_a_deleted_namespace_is_no_longer_watched(insights: references.Insights) -> None:
    # Its last state: every condition False, nothing left in it.
    event = namespace_event("DELETED", deleting=True, conditions=FIRST_TERMINATING_STATUS)
    observation.revise_namespaces(insights=insights, namespaces=["team-a"], raw_events=[event])
    assert insights.namespaces == set()
