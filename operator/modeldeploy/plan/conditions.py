"""Status conditions, kept the Kubernetes way: lastTransitionTime moves only when status does.

Rewriting an unchanged condition with a fresh timestamp would make every
reconcile a status write; keeping the old one is what makes an object at rest
cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from modeldeploy.api import Condition, ConditionStatus, ConditionType

_ORDER = {t.value: i for i, t in enumerate(ConditionType)}
"""Where each type stands in ``status.conditions`` (types the operator does not know go last)."""


def set_condition(
    conditions: Iterable[Condition],
    type_: ConditionType,
    status: bool,
    reason: str,
    message: str,
    now: datetime,
    generation: int,
) -> list[Condition]:
    """Conditions with ``type_`` set; its transition time kept when its status did not change.

    Most passes set a condition to what it already says: then the existing one is kept as it is
    (no new model to validate).
    """
    wanted = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    existing = list(conditions)
    previous = next((c for c in existing if c.type == type_), None)
    said = (wanted, reason, message, generation)
    if (
        previous is not None
        and (previous.status, previous.reason, previous.message, previous.observed_generation) == said
    ):
        updated = previous
    else:
        since = previous.last_transition_time if previous is not None and previous.status == wanted else now
        updated = Condition(
            type=type_,
            status=wanted,
            reason=reason,
            message=message,
            last_transition_time=since,
            observed_generation=generation,
        )
    result = [c for c in existing if c.type != type_] + [updated]
    return sorted(result, key=lambda c: _ORDER.get(c.type, len(_ORDER)))
