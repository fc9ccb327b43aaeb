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
