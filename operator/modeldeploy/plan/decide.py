"""Deciding for a valid, live ModelDeployment: one pass over the concerns, in order of precedence.

0. the gateway's verdict on the HTTPRoute (:mod:`~modeldeploy.plan.acceptance`)
   may hold traffic where it is;
1. a manual action (:mod:`~modeldeploy.plan.actions`) may drop, replace or
   hurry the candidate;
2. the candidate advances (:mod:`~modeldeploy.plan.stages`): superseded by a
   newer spec, started, one stage further, promoted or rolled back;
3. the fallback trigger (:mod:`~modeldeploy.plan.fallback`) may take all
   traffic off the stable revision, whatever the rollout decided;
4. a revision the route no longer sends live traffic to drains for the
   scale-down delay (:mod:`~modeldeploy.plan.drain`);
5. monitoring (:mod:`~modeldeploy.plan.monitoring`) watches the stable revision.

State lives in ``status`` (rule 6): ``status.stable``, ``status.candidate``,
``status.analysis`` and ``status.operatorState``; each step reads it through
the :class:`~modeldeploy.plan.decision.Context` and hands a new
:class:`~modeldeploy.plan.decision.Record` to the next.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from modeldeploy.api import (
    ConditionType,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    OperatorState,
    Phase,
    Router,
)
from modeldeploy.plan.acceptance import Acceptance, RouteVerdict, route_verdict
from modeldeploy.plan.actions import carry_out
from modeldeploy.plan.decision import Context, Decision, Record
from modeldeploy.plan.drain import drain_leavers
from modeldeploy.plan.fallback import decide_fallback
from modeldeploy.plan.inputs import Inputs, Observed, Subject
from modeldeploy.plan.monitoring import monitor
from modeldeploy.plan.notices import settle
from modeldeploy.plan.revisions import revision_name, revision_source
from modeldeploy.plan.stages import advance


def context(
    subject: Subject,
    spec: ModelDeploymentSpec,
    observed: Observed,
    status: ModelDeploymentStatus,
    now: datetime,
    inputs: Inputs,
) -> Context:
    """What a decision about a valid, live ModelDeployment reads."""
    desired = revision_name(subject.name, revision_source(spec.model, spec.runtime))
    return Context(subject, spec, observed, status, now, inputs, desired)


def decide(ctx: Context) -> Decision:
    """The next state of a valid, live ModelDeployment."""
    subject, spec, observed, status, now, inputs = (
        ctx.subject,
        ctx.spec,
        ctx.observed,
        ctx.status,
        ctx.now,
        ctx.inputs,
    )
    state = status.operator_state or OperatorState()
    source = revision_source(spec.model, spec.runtime)
    state = state.model_copy(update={"revisions": {**state.revisions, ctx.desired: source}})
    record = Record(
        state=state,
        rejected=_current_rejection(state, subject.generation),
        history=tuple(status.history),
        analysis=tuple(inputs.analysis) if inputs.analysis is not None else tuple(status.analysis),
    )

    route = route_verdict(observed.route, spec, now) if spec.router == Router.GATEWAY_API else None
    record = _route_events(status, route, record)
    acted = carry_out(ctx, status.stable, status.candidate, record)
    step = advance(
        ctx,
        status.stable,
        acted.candidate,
        acted.record,
        promote_step=acted.promote_step,
        promote_full=acted.promote_full,
        hold=route.message if route is not None and route.holds else None,
    )
    fallback, record = decide_fallback(ctx, step.stable, step.record)
    record = drain_leavers(ctx, step.stable, step.candidate, record)
    phase, message = step.phase, step.message
    if fallback.why is not None:
        phase, message = Phase.DEGRADED, f"serving the fallback: {fallback.why}"
    stable = step.stable
    watch = monitor(
        ctx.owner,
        spec,
        stable,
        list(inputs.monitoring) if inputs.monitoring is not None else list(status.monitoring),
        status.conditions,
        status.retrain,
        observed.jobs,
        inputs.webhook,
        now,
        subject.generation,
    )
    record = replace(record, events=(*record.events, *watch.events))
    notices, state = settle(
        (*record.notices, *watch.notices),
        spec,
        status.stable,
        record.state,
        inputs.notification_targets,
        inputs.cloud_events,
    )
    return Decision(
        stable=stable,
        candidate=step.candidate,
        phase=phase,
        message=message,
        events=record.events,
        history=record.history,
        analysis=record.analysis,
        rejection=record.rejected,
        fallback=fallback,
        monitoring=watch,
        state=state,
        notices=notices,
        route=route,
    )


def _route_events(status: ModelDeploymentStatus, route: RouteVerdict | None, record: Record) -> Record:
    """A Warning when the gateway starts refusing the route (or never answers), Normal when it accepts."""
    if route is None:
        return record
    previous = status.condition(ConditionType.ROUTE_ACCEPTED)
    if previous is not None and previous.reason == route.reason and previous.message == route.message:
        return record
    if route.acceptance == Acceptance.REFUSED:
        return record.event("Warning", "RouteRefused", route.message)
    if route.acceptance == Acceptance.NO_STATUS and not route.holds:
        return record.event("Warning", "RouteUnconfirmed", route.message)
    if route.acceptance == Acceptance.ACCEPTED and previous is not None and previous.status != "True":
        return record.event("Normal", "RouteAccepted", route.message)
    return record


def _current_rejection(state: OperatorState, generation: int) -> str | None:
    rejected = state.rejected
    if rejected is None or rejected.generation != generation:
        return None  # any spec change lifts a rejection
    return rejected.revision
