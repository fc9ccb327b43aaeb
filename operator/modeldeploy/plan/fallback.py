"""The fallback decision: when all traffic moves to a standing backend, and when it comes back.

Three kinds of backend (``spec.fallback.mode``):

- ``PreviousRevision``: the last stable revision is kept running at
  ``fallback.replicas`` instead of being scaled to zero;
- ``Model``: a Deployment ``<name>-fallback`` serving ``fallback.model``;
- ``Response``: a Deployment ``<name>-fallback`` running stock nginx that
  answers every request with ``fallback.response`` (kept in a ConfigMap).

Each sits behind the Service ``<name>-fallback``. Traffic fails over (all of
it, to the fallback) the moment the stable revision has no Ready replica, or
when the trigger metrics fail ``failureLimit`` checks in a row; it comes back
only after ``recoverAfter`` consecutive healthy checks, one per
``trigger.interval``, so a flapping model does not drag users back and forth.
A fallback that is not Ready itself never takes traffic (rule 1), and one
that loses its Ready replicas while serving gives the traffic back at once to
a stable revision that has some (also after a promotion, when the previous
revision it stands for becomes the stable that went down).

The trigger's bookkeeping lives in ``status.operatorState.fallback``
(:class:`~modeldeploy.api.FallbackCounters`); this module decides, and
:func:`~modeldeploy.plan.workloads.fallback_objects` builds the backend.
"""

from __future__ import annotations

from datetime import datetime

from modeldeploy.api import (
    Fallback,
    FallbackCounters,
    FallbackMode,
    NotificationEvent,
    Outcome,
    Phase,
    Role,
    StableRevision,
)
from modeldeploy.api.times import format_time
from modeldeploy.plan.decision import Context, FallbackDecision, Record
from modeldeploy.plan.schedule import fallback_check_due


def decide_fallback(
    ctx: Context, stable: StableRevision | None, record: Record
) -> tuple[FallbackDecision, Record]:
    """Advance the trigger: whether traffic is on the fallback now, with the counters and Events."""
    fallback = ctx.spec.fallback
    if fallback is None or stable is None:
        return FallbackDecision(), record.with_state(fallback=None)
    previous_revision = None
    if fallback.mode == FallbackMode.PREVIOUS_REVISION:
        earlier = [
            h.revision
            for h in reversed(record.history)
            if h.outcome == Outcome.PROMOTED
            and h.revision != stable.revision
            and h.revision in record.state.revisions
        ]
        # The revision serving as the fallback stays it while the fallback is active,
        # even once superseded candidates have pushed its Promoted entry out of
        # status.history (rule 1: the traffic would otherwise go to a Service with
        # no pod behind it); the status records it in status.traffic (rule 6).
        serving = [
            share.revision
            for share in ctx.status.traffic
            if share.role == Role.FALLBACK
            and share.revision != stable.revision
            and share.revision in record.state.revisions
        ]
        if not earlier and serving and record.state.fallback is not None and record.state.fallback.active:
            earlier = serving
        previous_revision = earlier[0] if earlier else None
        backend = ctx.observed.revisions.get(previous_revision or "")
    else:
        backend = ctx.observed.fallback
    observed = ctx.observed.revisions.get(stable.revision)
    stable_ready = observed.ready if observed is not None else 0
    previous = record.state.fallback or FallbackCounters()
    counters, reason = step(
        fallback,
        previous,
        stable_ready,
        ctx.inputs.fallback_failing,
        # With trigger metrics, a check counts only once they were measured (the
        # measurement runs off the reconcile and may arrive a round or more later).
        fallback_check_due(ctx.spec, record.state, ctx.now)
        and (not fallback.trigger.metrics or ctx.inputs.fallback_failing is not None),
        backend is not None and backend.ready > 0,
        ctx.now,
    )
    record = record.with_state(fallback=counters)
    why = "the stable revision has no Ready replica" if stable_ready == 0 else "the trigger metrics fail"
    if reason == "FallbackActivated":
        message = f"all traffic to the fallback ({fallback.mode.value}): {why}"
        record = record.event("Warning", reason, message).notify(
            NotificationEvent.FALLBACK_ACTIVATED,
            f"{stable.revision}/{format_time(ctx.now)}",
            message,
            revision=stable.revision,
            version=stable.version,
            stage=f"fallback ({fallback.mode.value})",
        )
    elif reason == "FallbackRecovered":
        message = (
            f"{stable.revision} healthy for {fallback.trigger.recover_after} checks; traffic is back on it"
        )
        record = record.event("Normal", reason, message).notify(
            NotificationEvent.FALLBACK_RECOVERED,
            f"{stable.revision}/{format_time(ctx.now)}",
            message,
            revision=stable.revision,
            version=stable.version,
            stage=f"fallback ({fallback.mode.value})",
        )
    elif reason == "FallbackLost":
        record = record.event(
            "Warning",
            "FallbackNotReady",
            f"the fallback has no Ready replica; traffic is back on {stable.revision} ({stable_ready} Ready)",
        )
    elif (
        not counters.active
        and (stable_ready == 0 and fallback.trigger.no_ready_replicas)
        and (backend is None or backend.ready == 0)
        and not previous.active
        and ctx.status.phase != Phase.DEGRADED
    ):
        record = record.event(
            "Warning",
            "FallbackNotReady",
            "the stable revision has no Ready replica and the fallback is not Ready either",
        )
    return FallbackDecision(counters.active, previous_revision, why if counters.active else None), record


def step(
    fallback: Fallback,
    previous: FallbackCounters,
    stable_ready: int,
    metrics_failing: bool | None,
    check: bool,
    backend_ready: bool,
    now: datetime,
) -> tuple[FallbackCounters, str | None]:
    """The trigger's next state and, on a transition, its reason (FallbackActivated/Recovered/Lost)."""
    trigger = fallback.trigger
    down = trigger.no_ready_replicas and stable_ready == 0
    failures, healthy, checked = previous.failures, previous.healthy, previous.checked_at
    if check:
        checked = now.replace(microsecond=0)  # as the wire keeps it
        unhealthy = down or bool(metrics_failing)
        failures = failures + 1 if metrics_failing else 0
        healthy = 0 if unhealthy else healthy + 1
    elif down:
        healthy = 0
    active = previous.active
    reason = None
    if not active and backend_ready and (down or failures >= trigger.failure_limit):
        active, healthy, reason = True, 0, "FallbackActivated"
    elif active and not backend_ready and stable_ready > 0:
        # Rule 1: a fallback with no Ready replica (it went down, or the previous
        # revision it stands for changed at a promotion) keeps no traffic while the
        # stable revision has Ready replicas; waiting for recoverAfter would serve nothing.
        active, failures, healthy, reason = False, 0, 0, "FallbackLost"
    elif active and healthy >= trigger.recover_after and not down:
        active, failures, reason = False, 0, "FallbackRecovered"
    return FallbackCounters(active=active, failures=failures, healthy=healthy, checked_at=checked), reason
