"""The status a decision leaves behind: conditions, the trimmed history, the bookkeeping, the wire form.

Conditions follow the Kubernetes conventions (see
:mod:`~modeldeploy.plan.conditions`): a condition's lastTransitionTime moves
only when its status does, so an object at rest writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from modeldeploy.api import (
    Condition,
    ConditionStatus,
    ConditionType,
    HistoryEntry,
    MetricResult,
    ModelDeploymentStatus,
    OperatorState,
    Phase,
    RejectedRevision,
    TrafficShare,
)
from modeldeploy.plan.acceptance import Acceptance
from modeldeploy.plan.conditions import set_condition
from modeldeploy.plan.decision import Context, Decision
from modeldeploy.plan.notices import refused_targets
from modeldeploy.plan.sizing import serving_ready

MESSAGE_LIMIT = 4000


def trim_history(history: Sequence[HistoryEntry], limit: int) -> list[HistoryEntry]:
    """The newest ``limit`` entries (``revisionHistoryLimit``; 0 keeps none)."""
    return list(history[-limit:]) if limit > 0 else []


def wire(status: ModelDeploymentStatus) -> dict[str, Any]:
    """The status as the API server stores it."""
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def bookkeeping(
    ctx: Context, decision: Decision, kept: Iterable[str], warm: Mapping[str, datetime]
) -> OperatorState:
    """The new ``status.operatorState``: sources of kept revisions only, live scale-down deadlines."""
    names = set(kept)
    rejected = (
        RejectedRevision(revision=decision.rejection, generation=ctx.subject.generation)
        if decision.rejection is not None
        else None
    )
    return decision.state.model_copy(
        update={
            "revisions": {name: src for name, src in decision.state.revisions.items() if name in names},
            "scale_down_at": dict(warm),
            "rejected": rejected,
        }
    )


def serving_status(
    ctx: Context,
    decision: Decision,
    traffic: Sequence[TrafficShare],
    history: Sequence[HistoryEntry],
    state: OperatorState,
) -> dict[str, Any]:
    """The whole new status of a serving ModelDeployment, in wire form."""
    spec = ctx.spec
    new = ctx.status.model_copy(
        update={
            "phase": decision.phase,
            "message": decision.message[:MESSAGE_LIMIT],
            "observed_generation": ctx.subject.generation,
            "router": spec.router,
            "stable": decision.stable,
            "candidate": decision.candidate,
            "traffic": list(traffic),
            "analysis": list(_analysis_record(ctx, decision)),
            "monitoring": list(decision.monitoring.results) if spec.monitoring is not None else [],
            "retrain": decision.monitoring.retrain,
            "history": list(history),
            "conditions": conditions(ctx, decision),
            "operator_state": state,
            "action": None,
        }
    )
    return wire(new)


def _analysis_record(ctx: Context, decision: Decision) -> Sequence[MetricResult]:
    """status.analysis: the decision's, unless those are rounds the measurer keeps unwritten for now
    (:attr:`Inputs.analysis_unsaved`); then status's own record stays."""
    if ctx.inputs.analysis_unsaved and tuple(decision.analysis) == ctx.inputs.analysis:
        return ctx.status.analysis
    return decision.analysis


def conditions(ctx: Context, decision: Decision) -> list[Condition]:
    """Ready, Available, Progressing, FallbackActive and Degraded for the decision (InvalidSpec cleared)."""
    generation, now = ctx.subject.generation, ctx.now
    stable, candidate, phase, message = decision.stable, decision.candidate, decision.phase, decision.message
    fallback_active = decision.fallback.active
    observed = ctx.observed.revisions.get(stable.revision) if stable else None
    ready = serving_ready(ctx.spec, observed)
    available = observed is not None and observed.ready > 0
    result = set_condition(
        decision.monitoring.conditions, ConditionType.INVALID_SPEC, False, "Valid", "", now, generation
    )
    result = set_condition(
        result,
        ConditionType.READY,
        ready and phase == Phase.STABLE,
        "RevisionReady" if ready else "RevisionNotReady",
        message,
        now,
        generation,
    )
    result = set_condition(
        result,
        ConditionType.AVAILABLE,
        available,
        "MinimumReplicasReady" if available else "NoReadyReplicas",
        # With an HPA the count moves with load: a message counting pods would be a status write per scale.
        f"{observed.ready if observed else 0} stable replicas ready"
        if ctx.spec.autoscaling is None
        else ("stable replicas ready" if available else "no stable replica ready"),
        now,
        generation,
    )
    progressing = candidate is not None and phase in (Phase.PROGRESSING, Phase.PAUSED)
    reason = {
        Phase.DEGRADED: "FallbackActive" if fallback_active else "ProgressDeadlineExceeded",
        Phase.PAUSED: "Paused",
        Phase.ROLLED_BACK: "RolledBack",
    }.get(phase, "NewRevisionProgressing" if progressing else "RolloutComplete")
    result = set_condition(result, ConditionType.PROGRESSING, progressing, reason, message, now, generation)
    result = set_condition(
        result,
        ConditionType.FALLBACK_ACTIVE,
        fallback_active,
        "StableUnavailable" if fallback_active else "StableServing",
        message if fallback_active else "",
        now,
        generation,
    )
    result = _notifications_condition(ctx, result)
    result = _route_condition(result, decision, now, generation)
    degraded = phase in (Phase.DEGRADED, Phase.ROLLED_BACK)
    return set_condition(
        result,
        ConditionType.DEGRADED,
        degraded,
        reason if degraded else "AsExpected",
        message if degraded else "",
        now,
        generation,
    )


def _notifications_condition(ctx: Context, current: list[Condition]) -> list[Condition]:
    """NotificationsRefused: True naming each subscribed target the admin does not offer here.

    Set only once ``spec.notifications`` was used, so objects without it see no new condition.
    """
    kind = ConditionType.NOTIFICATIONS_REFUSED
    if not ctx.spec.notifications and not any(c.type == kind for c in current):
        return current
    refused = refused_targets(ctx.spec, ctx.inputs.notification_targets)
    message = ""
    if refused:
        names = ", ".join(repr(t) for t in refused)
        message = (
            f"spec.notifications: target {names} does not exist or is not offered to namespace "
            f"{ctx.subject.namespace!r}; ask the operator's admin to add it to notificationTargets "
            f"(with this namespace), or remove it; the rollout goes on without it"
        )
    return set_condition(
        current,
        kind,
        bool(refused),
        "TargetRefused" if refused else "TargetsAccepted",
        message,
        ctx.now,
        ctx.subject.generation,
    )


def _route_condition(
    conditions: list[Condition], decision: Decision, now: datetime, generation: int
) -> list[Condition]:
    """RouteAccepted: True, False (refused or not yet accepted) or Unknown (no gateway status)."""
    route = decision.route
    if route is None:
        return [c for c in conditions if c.type != ConditionType.ROUTE_ACCEPTED]
    result = set_condition(
        conditions,
        ConditionType.ROUTE_ACCEPTED,
        route.acceptance == Acceptance.ACCEPTED,
        route.reason,
        route.message[:MESSAGE_LIMIT],
        now,
        generation,
    )
    if route.acceptance != Acceptance.NO_STATUS:
        return result
    previous = next((c for c in conditions if c.type == ConditionType.ROUTE_ACCEPTED), None)
    since = previous.last_transition_time if previous and previous.status == ConditionStatus.UNKNOWN else now
    return [
        c.model_copy(update={"status": ConditionStatus.UNKNOWN, "last_transition_time": since})
        if c.type == ConditionType.ROUTE_ACCEPTED
        else c
        for c in result
    ]
