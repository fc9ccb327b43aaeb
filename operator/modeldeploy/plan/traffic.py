"""Traffic: the stable and candidate Services, the route's split, and the shares recorded in status.

Traffic follows from the decision alone:

- the route sends ``100 - w`` to the stable Service and ``w`` to the candidate
  Service, where ``w`` is the weight the candidate was given when it entered
  its current canary step (0 otherwise), and mirrors the shadow percent to the
  candidate during an entered shadow stage;
- with the service router, a canary weight is approximated: the stable
  Service selects the pods of both revisions (by instance label) and the
  candidate's replica count sets the ratio;
- while the fallback is active, all of it goes to the fallback, and the stable
  Service selects the fallback's pods (for clients that call it directly);
- the candidate Service keeps its old revision until the route is seen no
  longer sending it traffic (:func:`candidate_target`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modeldeploy.api import Role, TrafficShare
from modeldeploy.plan.decision import Context, Decision
from modeldeploy.plan.positions import Position, approximates_weights, mirror_percent
from modeldeploy.plan.revisions import LABEL_REVISION
from modeldeploy.plan.routes import Backend, Split, render_route
from modeldeploy.plan.workloads import service


@dataclass(frozen=True)
class Traffic:
    """The objects that steer live traffic, and the split as status records it.

    Invariants (rules 1 and 2): the shares' weights sum to 100 when there are
    any; a mirror goes only to the candidate; the candidate gets a weight or
    mirror only in a stage it has entered.
    """

    stable_service: dict[str, Any]
    candidate_service: dict[str, Any]
    route: dict[str, Any] | None
    shares: tuple[TrafficShare, ...]


def route_traffic(ctx: Context, decision: Decision, fallback_target: str | None) -> Traffic:
    """The Services, the route and the shares for the decided revisions."""
    spec, owner = ctx.spec, ctx.owner
    stable, candidate = decision.stable, decision.candidate
    weight = candidate.weight if candidate is not None and stable is not None else 0
    mirror = 0
    if candidate is not None and candidate.stage_started_at is not None:
        mirror = mirror_percent(spec, Position(candidate.stage, candidate.step))
    port = spec.runtime.port
    selected = stable.revision if stable else (candidate.revision if candidate else None)
    stable_service = service(owner, owner.stable_service, selected, port, "stable")
    if weight > 0 and approximates_weights(spec):
        stable_service["spec"]["selector"] = {"app.kubernetes.io/instance": owner.name}
    if decision.fallback.active:
        weight, mirror = 0, 0
        stable_service["spec"]["selector"] = {LABEL_REVISION: fallback_target}
    candidate_service = service(
        owner, owner.candidate_service, candidate_target(ctx, decision), port, "candidate"
    )

    route = None
    shares: list[TrafficShare] = []
    if stable is not None and decision.fallback.active and fallback_target is not None:
        split = Split(
            (Backend("stable", owner.stable_service, 0), Backend("fallback", owner.fallback_service, 100))
        )
        route = render_route(owner, spec, split)
        shares.append(TrafficShare(revision=fallback_target, role=Role.FALLBACK, weight=100))
    elif stable is not None:
        split = Split(
            (
                Backend("stable", owner.stable_service, 100 - weight),
                Backend("candidate", owner.candidate_service, weight),
            ),
            mirror_service=owner.candidate_service if mirror else None,
            mirror_percent=mirror,
        )
        route = render_route(owner, spec, split)
        shares.append(TrafficShare(revision=stable.revision, role=Role.STABLE, weight=100 - weight))
        if candidate is not None and (weight or mirror):
            shares.append(
                TrafficShare(
                    revision=candidate.revision,
                    role=Role.CANDIDATE,
                    weight=weight,
                    mirror_percent=mirror or None,
                )
            )
    return Traffic(stable_service, candidate_service, route, tuple(shares))


def candidate_target(ctx: Context, decision: Decision) -> str | None:
    """What the candidate Service selects.

    The first revision is nobody's challenger: its Service stays empty. And the
    Service keeps its current revision for as long as the observed route still
    sends or mirrors traffic to it, or the gateway has not accepted the route
    (at a promotion, a rollback or a superseded candidate): the route changes
    first, then, once that is seen, the Service
    (rule 1: no live traffic to a Service with no Ready pod behind it).
    """
    candidate, stable = decision.candidate, decision.stable
    wanted = candidate.revision if candidate is not None and stable is not None else None
    current = ctx.observed.candidate_service_revision
    held = decision.route is not None and decision.route.holds
    if current is not None and current != wanted and (ctx.observed.candidate_routed or held):
        return current
    return wanted
