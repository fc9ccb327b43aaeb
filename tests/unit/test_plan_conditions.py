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


def test_a_condition_set_to_what_it_says_is_kept_as_it_is() -> None:
    first = set_condition([], ConditionType.READY, True, "Serving", "ok", T0, 1)
    later = T0 + timedelta(minutes=5)
    again = set_condition(first, ConditionType.READY, True, "Serving", "ok", later, 1)
    assert again[0] is first[0]
    changed = [
        set_condition(first, ConditionType.READY, True, "Other", "ok", later, 1)[0],
        set_condition(first, ConditionType.READY, True, "Serving", "other", later, 1)[0],
        set_condition(first, ConditionType.READY, True, "Serving", "ok", later, 2)[0],
    ]
    assert [(c.reason, c.message, c.observed_generation, c.last_transition_time) for c in changed] == [
        ("Other", "ok", 1, T0),
        ("Serving", "other", 1, T0),
        ("Serving", "ok", 2, T0),
    ]
