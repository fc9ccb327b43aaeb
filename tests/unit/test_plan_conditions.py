"""Status conditions: lastTransitionTime moves only when the status does; each names the generation seen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modeldeploy.api import ConditionStatus, ConditionType
from modeldeploy.plan.conditions import set_condition

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def test_the_transition_time_moves_only_when_the_status_changes() -> None:
    first = set_condition([], ConditionType.READY, True, "Serving", "ok", T0, 1)
    later = T0 + timedelta(minutes=5)
    same = set_condition(first, ConditionType.READY, True, "StillServing", "still ok", later, 2)
    flipped = set_condition(same, ConditionType.READY, False, "NoReplicas", "down", later, 2)
    assert [(c.status, c.last_transition_time, c.reason, c.observed_generation) for c in same] == [
        (ConditionStatus.TRUE, T0, "StillServing", 2)
    ]
    assert [(c.status, c.last_transition_time, c.message) for c in flipped] == [
        (ConditionStatus.FALSE, later, "down")
    ]


def test_conditions_are_kept_one_per_type_in_a_fixed_order() -> None:
    conditions = set_condition([], ConditionType.DEGRADED, False, "Fine", "", T0, 3)
    conditions = set_condition(conditions, ConditionType.READY, True, "Serving", "", T0, 3)
    conditions = set_condition(conditions, ConditionType.DEGRADED, True, "Deadline", "", T0, 3)
    assert [(c.type, c.status) for c in conditions] == [
        (ConditionType.READY, ConditionStatus.TRUE),
        (ConditionType.DEGRADED, ConditionStatus.TRUE),
    ]
    assert {c.observed_generation for c in conditions} == {3}
