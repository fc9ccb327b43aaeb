"""The status models: written by the operator, read leniently, with a manual action request."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modeldeploy.api import (
    ActionType,
    CandidateRevision,
    Condition,
    ConditionStatus,
    ConditionType,
    InvalidManifestError,
    ModelDeploymentStatus,
    Phase,
    Stage,
    parse_status,
)

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def test_an_absent_status_reads_as_empty() -> None:
    status = parse_status(None)
    assert (status.phase, status.traffic, status.conditions, status.action) == (None, [], [], None)


def test_unknown_status_fields_are_ignored_so_an_older_operator_can_read_a_newer_status() -> None:
    assert parse_status({"phase": "Stable", "somethingNew": {"x": 1}}).phase is Phase.STABLE


def test_status_is_written_in_camel_case_with_utc_timestamps() -> None:
    status = ModelDeploymentStatus(
        observed_generation=3,
        phase=Phase.PROGRESSING,
        candidate=CandidateRevision(
            revision="fraud-3-2-0-7c9f2",
            version="3.2.0",
            stage=Stage.CANARY,
            step=1,
            weight=25,
            stage_started_at=NOW,
        ),
        conditions=[
            Condition(
                type=ConditionType.PROGRESSING,
                status=ConditionStatus.TRUE,
                reason="CanaryStep",
                last_transition_time=NOW,
            )
        ],
    )
    wire = status.to_wire()
    assert wire["observedGeneration"] == 3
    assert wire["candidate"]["stageStartedAt"] == "2026-11-22T10:00:00Z"
    assert wire["conditions"][0]["lastTransitionTime"] == "2026-11-22T10:00:00Z"
    assert parse_status(wire) == status


def test_conditions_are_found_by_type() -> None:
    condition = Condition(
        type="Ready", status=ConditionStatus.FALSE, reason="NoStable", last_transition_time=NOW
    )
    status = ModelDeploymentStatus(conditions=[condition])
    assert status.condition(ConditionType.READY) == condition
    assert status.condition(ConditionType.DEGRADED) is None


def test_a_manual_action_is_read_from_status() -> None:
    status = parse_status(
        {"action": {"type": "Undo", "toRevision": "fraud-3-1-0-5d8c1", "requestedAt": "2026-11-22T10:00:00Z"}}
    )
    assert status.action is not None
    assert (status.action.type, status.action.to_revision, status.action.requested_at) == (
        ActionType.UNDO,
        "fraud-3-1-0-5d8c1",
        NOW,
    )


def test_to_revision_belongs_to_undo_only() -> None:
    with pytest.raises(InvalidManifestError) as caught:
        parse_status({"action": {"type": "Promote", "toRevision": "x"}})
    assert [str(p) for p in caught.value.problems] == [
        "status.action: Invalid value: status.action.toRevision is only used with type Undo"
    ]


def test_timestamps_without_a_time_zone_are_refused() -> None:
    with pytest.raises(InvalidManifestError):
        parse_status({"stable": {"revision": "r", "version": "1", "since": "2026-11-22T10:00:00"}})


# status.operatorState as operators before the typed model wrote it, mid blue-green after an undo
# started, with kopf's own keys beside the planner's.
OLD_OPERATOR_STATE = {
    "revisions": {
        "fraud-1-0-0-aaaaa": {
            "model": {"name": "fraud-detector", "version": "1.0.0"},
            "runtime": {"image": "ghcr.io/acme/server:1", "port": 8080},
        },
        "fraud-2-0-0-bbbbb": {
            "model": {"name": "fraud-detector", "version": "2.0.0"},
            "runtime": {"image": "ghcr.io/acme/server:1", "port": 8080},
        },
    },
    "undo": True,
    "scaleDownAt": {"fraud-1-0-0-aaaaa": "2026-11-22T10:10:00Z"},
    "rejected": {"revision": "fraud-2-0-0-bbbbb", "generation": 3},
    "fallback": {"active": True, "failures": 2, "healthy": 1, "checkedAt": "2026-11-22T10:00:05Z"},
    "kopf": {"progress": {"reconcile": {"started": "2026-11-22T09:00:00.000000+00:00"}}},
    "touch": None,
    "lastHandledConfiguration": '{"spec": {}}',
}


def test_the_operator_state_an_older_operator_wrote_reads_as_typed_values() -> None:
    state = parse_status({"operatorState": OLD_OPERATOR_STATE}).operator_state
    assert state is not None
    assert sorted(state.revisions) == ["fraud-1-0-0-aaaaa", "fraud-2-0-0-bbbbb"]
    assert state.undo is True
    assert state.scale_down_at == {"fraud-1-0-0-aaaaa": datetime(2026, 11, 22, 10, 10, tzinfo=UTC)}
    assert state.rejected is not None
    assert (state.rejected.revision, state.rejected.generation) == ("fraud-2-0-0-bbbbb", 3)
    assert state.fallback is not None
    assert (state.fallback.active, state.fallback.failures, state.fallback.healthy) == (True, 2, 1)
    assert state.fallback.checked_at == datetime(2026, 11, 22, 10, 0, 5, tzinfo=UTC)


def test_the_operator_state_is_written_back_exactly_as_an_older_operator_wrote_it() -> None:
    status = parse_status({"operatorState": OLD_OPERATOR_STATE})
    wire = status.model_dump(mode="json", by_alias=True, exclude_none=True)["operatorState"]
    assert wire == OLD_OPERATOR_STATE


def test_an_operator_state_at_rest_leaves_out_what_older_operators_left_out() -> None:
    status = parse_status({"operatorState": {"revisions": {}, "undo": False, "scaleDownAt": {}}})
    wire = status.model_dump(mode="json", by_alias=True, exclude_none=True)["operatorState"]
    assert wire == {"revisions": {}}
