"""From a Decision to a Plan: the objects to apply, the Deployments to scale or delete, the new status.

Rendering reads the :class:`~modeldeploy.plan.decision.Decision` (and the
context it was decided in) and nothing else; it decides nothing a reader of
the Decision could not predict. By concern: the revisions' Deployments and the
fallback backend (:mod:`~modeldeploy.plan.workloads`), Services and route
(:mod:`~modeldeploy.plan.traffic`), what goes away
(:mod:`~modeldeploy.plan.cleanup`), and the status
(:mod:`~modeldeploy.plan.status`). Objects are applied in a fixed order:
Deployments, their HorizontalPodAutoscalers (sized by
:mod:`~modeldeploy.plan.sizing`), the fallback's ConfigMap and Deployment, the
stable and candidate Services, the fallback Service, a retrain Job, then the
route.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from modeldeploy.api import ModelSpec, RuntimeSpec, Stage, parse_duration
from modeldeploy.plan.cleanup import AUTOSCALER, clean_up, keep
from modeldeploy.plan.decision import Context, Decision
from modeldeploy.plan.outputs import Plan
from modeldeploy.plan.positions import Position, next_position, scaled_replicas
from modeldeploy.plan.revisions import LABEL_REVISION
from modeldeploy.plan.schedule import kept_warm, next_wakeup
from modeldeploy.plan.sizing import (
    Size,
    candidate_bounds,
    current_size,
    handed_over,
    stable_bounds,
    starting_size,
)
from modeldeploy.plan.status import bookkeeping, serving_status, trim_history
from modeldeploy.plan.traffic import route_traffic
from modeldeploy.plan.workloads import (
    fallback_objects,
    retrain_job,
    revision_autoscaler,
    revision_deployment,
)


def render(ctx: Context, decision: Decision) -> Plan:
    spec, stable = ctx.spec, decision.stable
    history = trim_history(decision.history, spec.revision_history_limit)
    warm = kept_warm(decision.state, stable.revision if stable else None, ctx.now)
    keeping = keep(decision, warm, history)
    sources = decision.state.revisions

    apply: list[dict[str, Any]] = []
    autoscalers: list[dict[str, Any]] = []
    hand_over: list[tuple[str, int]] = []
    # Revisions status names whose source is gone (status edited by hand): they cannot be
    # rendered, so their Deployments and autoscalers are left as found, never deleted while live.
    as_found = {revision for revision in keeping.live if revision not in sources}
    for revision in sorted(keeping.live - as_found):
        size = _size(ctx, decision, revision, warm)
        fixed = None if size.autoscaled else size.replicas
        apply.append(_deployment(ctx, revision, sources[revision], fixed))
        if size.bounds is not None and spec.autoscaling is not None:
            autoscalers.append(revision_autoscaler(ctx.owner, revision, size.bounds, spec.autoscaling))
            seen = ctx.observed.revisions.get(revision)
            if not handed_over(seen):
                start = seen.replicas if seen is not None and seen.replicas >= 1 else size.replicas
                hand_over.append((revision, start))
    apply += autoscalers
    backend: list[dict[str, Any]] = []
    if spec.fallback is not None and stable is not None:
        backend = fallback_objects(ctx.owner, spec, decision.fallback.previous_revision)
    fallback_target = next(
        (o["spec"]["selector"].get(LABEL_REVISION) for o in backend if o["kind"] == "Service"), None
    )
    traffic = route_traffic(ctx, decision, fallback_target)
    apply.extend(o for o in backend if o["kind"] != "Service")
    apply += [traffic.stable_service, traffic.candidate_service]
    apply.extend(o for o in backend if o["kind"] == "Service")
    apply.extend(_retrain_job(ctx, decision))
    if traffic.route is not None:
        apply.append(traffic.route)

    cleanup = clean_up(ctx, decision, apply, keeping)
    delete = tuple(ref for ref in cleanup.delete if not (ref.kind == AUTOSCALER and ref.name in as_found))
    state = bookkeeping(ctx, decision, keeping.kept, warm)
    return Plan(
        apply=tuple(apply),
        scale=cleanup.scale,
        hand_over=tuple(hand_over),
        delete=delete,
        status=serving_status(ctx, decision, traffic.shares, history, state),
        events=decision.events,
        notices=decision.notices,
        requeue_after=next_wakeup(
            spec,
            decision.candidate,
            decision.analysis,
            decision.state,
            ctx.status.stable is not None,
            decision.monitoring.results,
            ctx.now,
            decision.route.wait_ends if decision.route is not None else None,
            ctx.inputs.analysis_planned,
        ),
    )


def _retrain_job(ctx: Context, decision: Decision) -> list[dict[str, Any]]:
    """The retrain Job monitoring decided to start this round (applied in that round only)."""
    start, stable = decision.monitoring.start, decision.stable
    retrain = ctx.spec.monitoring.retrain if ctx.spec.monitoring else None
    if start is None or stable is None or retrain is None or retrain.job_template is None:
        return []
    source = decision.state.revisions.get(stable.revision)
    return [retrain_job(ctx.owner, start.job, retrain.job_template, stable, source, start.breach)]


def _size(ctx: Context, decision: Decision, revision: str, warm: Mapping[str, datetime]) -> Size:
    spec, stable, candidate = ctx.spec, decision.stable, decision.candidate
    serving = {r.revision for r in (stable, candidate) if r is not None}
    observed = ctx.observed.revisions.get(revision)
    if revision in warm and revision not in serving and observed is not None:
        return Size(observed.replicas)  # draining: neither scaled up nor down before its deadline
    if (
        revision == decision.fallback.previous_revision
        and spec.fallback is not None
        and revision not in serving
    ):
        return Size(spec.fallback.replicas)
    if candidate is None or revision != candidate.revision or stable is None:
        if spec.autoscaling is None:
            return Size(spec.replicas)
        return Size(starting_size(spec), stable_bounds(spec))
    position = Position(candidate.stage, candidate.step)
    if decision.state.undo:
        position = Position(Stage.PROMOTING)
    elif candidate.stage == Stage.DEPLOYING:
        position = next_position(spec, position)
    if spec.autoscaling is None:
        return Size(spec.replicas if decision.state.undo else scaled_replicas(spec, position))
    low, high = candidate_bounds(spec, position, current_size(spec, ctx.observed, stable.revision))
    return Size(low, (low, high))


def _deployment(ctx: Context, revision: str, source: dict[str, Any], replicas: int | None) -> dict[str, Any]:
    model = ModelSpec.model_validate(source["model"], by_alias=True)
    runtime = RuntimeSpec.model_validate(source["runtime"], by_alias=True)
    deadline = max(1, int(parse_duration(ctx.spec.progress_deadline)))
    return revision_deployment(ctx.owner, revision, source, model, runtime, replicas, deadline)
