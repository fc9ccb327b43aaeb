"""From a decided state to a Plan: objects to apply, Deployments to scale or delete, the new status.

The decided state is (stable, candidate, phase, message) plus the serving
planner's bookkeeping. Traffic follows from it:

- the route sends ``100 - w`` to the stable Service and ``w`` to the candidate
  Service, where ``w`` is the weight the candidate was given when it entered
  its current canary step (0 otherwise), and mirrors the shadow percent to the
  candidate during an entered shadow stage;
- with the service router, a canary weight is approximated: the stable
  Service selects the pods of both revisions (by instance label) and the
  candidate's replica count sets the ratio;
- a revision that is neither stable, candidate, nor kept warm (blue-green's
  scale-down delay) is scaled to zero once the stable Service is seen selecting
  the stable revision, and deleted once it falls out of the history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modeldeploy.api import (
    CandidateRevision,
    ConditionType,
    ModelSpec,
    Phase,
    RejectedRevision,
    Role,
    RuntimeSpec,
    StableRevision,
    Stage,
    TrafficShare,
    parse_duration,
)
from modeldeploy.plan.conditions import set_condition
from modeldeploy.plan.fallback import backend_objects
from modeldeploy.plan.model import ObjectRef, Plan
from modeldeploy.plan.revisions import LABEL_REVISION
from modeldeploy.plan.routes import Backend, Split, render_route
from modeldeploy.plan.schedule import kept_warm
from modeldeploy.plan.stages import (
    Position,
    approximates_weights,
    mirror_percent,
    next_position,
    scaled_replicas,
)
from modeldeploy.plan.workloads import Owner, revision_deployment, service

if TYPE_CHECKING:
    from modeldeploy.plan.serving import Serving

ROUTE_KINDS = ("HTTPRoute", "VirtualService")


class Renderer:
    def __init__(self, serving: Serving) -> None:
        self.s = serving
        self.owner = Owner(serving.subject.name, serving.subject.namespace, serving.subject.uid)

    def render(
        self,
        stable: StableRevision | None,
        candidate: CandidateRevision | None,
        phase: Phase,
        message: str,
    ) -> Plan:
        s, spec, observed = self.s, self.s.spec, self.s.observed
        history = s.history[-spec.revision_history_limit :] if spec.revision_history_limit > 0 else []
        warm = kept_warm(s.state, stable.revision if stable else None, s.now)
        live = {r.revision for r in (stable, candidate) if r is not None} | set(warm)
        if s.fallback_previous is not None:
            live.add(s.fallback_previous)
        kept = live | {h.revision for h in history}
        sources = {name: src for name, src in s.sources.items() if name in kept}

        apply: list[dict[str, Any]] = []
        for revision in sorted(live):
            apply.append(
                self._deployment(revision, sources[revision], self._replicas(revision, stable, candidate))
            )

        weight = candidate.weight if candidate is not None and stable is not None else 0
        mirror = 0
        if candidate is not None and candidate.stage_started_at is not None:
            mirror = mirror_percent(spec, Position(candidate.stage, candidate.step))
        port = spec.runtime.port
        stable_service = service(
            self.owner,
            self.owner.stable_service,
            stable.revision if stable else (candidate.revision if candidate else None),
            port,
            "stable",
        )
        if weight > 0 and approximates_weights(spec):
            stable_service["spec"]["selector"] = {"app.kubernetes.io/instance": self.owner.name}
        fallback_objects: list[dict[str, Any]] = []
        if spec.fallback is not None and stable is not None:
            fallback_objects = backend_objects(self.owner, spec, s.fallback_previous)
        fallback_target = next(
            (o["spec"]["selector"].get(LABEL_REVISION) for o in fallback_objects if o["kind"] == "Service"),
            None,
        )
        if s.fallback_active:
            weight, mirror = 0, 0
            stable_service["spec"]["selector"] = {LABEL_REVISION: fallback_target}
        apply.extend(o for o in fallback_objects if o["kind"] != "Service")
        apply.append(stable_service)
        apply.append(
            service(
                self.owner,
                self.owner.candidate_service,
                self._candidate_target(candidate, stable),
                port,
                "candidate",
            )
        )
        apply.extend(o for o in fallback_objects if o["kind"] == "Service")
        apply.extend(s.watch.apply)

        traffic: list[TrafficShare] = []
        if stable is not None and s.fallback_active and fallback_target is not None:
            split = Split(
                (
                    Backend("stable", self.owner.stable_service, 0),
                    Backend("fallback", f"{self.owner.name}-fallback", 100),
                )
            )
            route = render_route(self.owner, spec, split)
            if route is not None:
                apply.append(route)
            traffic.append(TrafficShare(revision=fallback_target, role=Role.FALLBACK, weight=100))
        elif stable is not None:
            split = Split(
                (
                    Backend("stable", self.owner.stable_service, 100 - weight),
                    Backend("candidate", self.owner.candidate_service, weight),
                ),
                mirror_service=self.owner.candidate_service if mirror else None,
                mirror_percent=mirror,
            )
            route = render_route(self.owner, spec, split)
            if route is not None:
                apply.append(route)
            traffic.append(TrafficShare(revision=stable.revision, role=Role.STABLE, weight=100 - weight))
            if candidate is not None and (weight or mirror):
                traffic.append(
                    TrafficShare(
                        revision=candidate.revision,
                        role=Role.CANDIDATE,
                        weight=weight,
                        mirror_percent=mirror or None,
                    )
                )

        current_route = next((o["kind"] for o in apply if o["kind"] in ROUTE_KINDS), None)
        deletions = [r for r in observed.children if r.kind in ROUTE_KINDS and r.kind != current_route]
        desired = {(o["kind"], o["metadata"]["name"]) for o in apply}
        fallback = f"{self.owner.name}-fallback"
        deletions += [r for r in observed.children if r.name == fallback and (r.kind, r.name) not in desired]
        current_job = s.watch.retrain.job if s.watch.retrain else None
        deletions += [r for r in observed.children if r.kind == "Job" and r.name != current_job]
        scale: list[tuple[str, int]] = []
        switched = stable is not None and observed.stable_service_revision == stable.revision
        for name, state in sorted(observed.revisions.items()):
            if name in live:
                continue
            if name not in kept:
                if switched:
                    deletions.append(ObjectRef("apps/v1", "Deployment", s.subject.namespace, name))
            elif switched and state.replicas != 0:
                scale.append((name, 0))

        rejected = (
            RejectedRevision(revision=s.rejected, generation=s.subject.generation)
            if s.rejected is not None
            else None
        )
        bookkeeping = s.state.model_copy(
            update={"revisions": sources, "scale_down_at": warm, "rejected": rejected}
        )

        new = s.status.model_copy(
            update={
                "phase": phase,
                "message": message[:4000],
                "observed_generation": s.subject.generation,
                "router": spec.router,
                "stable": stable,
                "candidate": candidate,
                "traffic": traffic,
                "analysis": s.analysis,
                "monitoring": s.watch.results if spec.monitoring is not None else [],
                "retrain": s.watch.retrain,
                "history": history,
                "conditions": self._conditions(stable, candidate, phase, message),
                "operator_state": bookkeeping,
                "action": None,
            }
        )
        return Plan(
            apply=tuple(apply),
            scale=tuple(scale),
            delete=tuple(deletions),
            status=new.model_dump(mode="json", by_alias=True, exclude_none=True),
            events=tuple(s.events),
            requeue_after=s.next_wakeup(candidate),
        )

    def _candidate_target(
        self, candidate: CandidateRevision | None, stable: StableRevision | None
    ) -> str | None:
        """What the candidate Service selects.

        The first revision is nobody's challenger: its Service stays empty. And the
        Service keeps its current revision for as long as the observed route still
        sends or mirrors traffic to it (at a promotion, a rollback or a superseded
        candidate): the route changes first, then, once that is seen, the Service
        (rule 1: no live traffic to a Service with no Ready pod behind it).
        """
        wanted = candidate.revision if candidate is not None and stable is not None else None
        current = self.s.observed.candidate_service_revision
        if current is not None and current != wanted and self.s.observed.candidate_routed:
            return current
        return wanted

    def _replicas(
        self, revision: str, stable: StableRevision | None, candidate: CandidateRevision | None
    ) -> int:
        spec = self.s.spec
        serving = {r.revision for r in (stable, candidate) if r is not None}
        if revision == self.s.fallback_previous and spec.fallback is not None and revision not in serving:
            return spec.fallback.replicas
        if candidate is None or revision != candidate.revision or stable is None or self.s.state.undo:
            return spec.replicas
        position = Position(candidate.stage, candidate.step)
        if candidate.stage == Stage.DEPLOYING:
            position = next_position(spec, position)
        return scaled_replicas(spec, position)

    def _deployment(self, revision: str, source: dict[str, Any], replicas: int) -> dict[str, Any]:
        model = ModelSpec.model_validate(source["model"], by_alias=True)
        runtime = RuntimeSpec.model_validate(source["runtime"], by_alias=True)
        deadline = max(1, int(parse_duration(self.s.spec.progress_deadline)))
        return revision_deployment(self.owner, revision, source, model, runtime, replicas, deadline)

    def _conditions(
        self, stable: StableRevision | None, candidate: CandidateRevision | None, phase: Phase, message: str
    ) -> list[Any]:
        s = self.s
        generation, now = s.subject.generation, s.now
        observed = s.observed.revisions.get(stable.revision) if stable else None
        ready = observed is not None and observed.serves(s.spec.replicas)
        available = observed is not None and observed.ready > 0
        conditions = set_condition(
            s.watch.conditions, ConditionType.INVALID_SPEC, False, "Valid", "", now, generation
        )
        conditions = set_condition(
            conditions,
            ConditionType.READY,
            ready and phase == Phase.STABLE,
            "RevisionReady" if ready else "RevisionNotReady",
            message,
            now,
            generation,
        )
        conditions = set_condition(
            conditions,
            ConditionType.AVAILABLE,
            available,
            "MinimumReplicasReady" if available else "NoReadyReplicas",
            f"{observed.ready if observed else 0} stable replicas ready",
            now,
            generation,
        )
        progressing = candidate is not None and phase in (Phase.PROGRESSING, Phase.PAUSED)
        reason = {
            Phase.DEGRADED: "FallbackActive" if s.fallback_active else "ProgressDeadlineExceeded",
            Phase.PAUSED: "Paused",
            Phase.ROLLED_BACK: "RolledBack",
        }.get(phase, "NewRevisionProgressing" if progressing else "RolloutComplete")
        conditions = set_condition(
            conditions, ConditionType.PROGRESSING, progressing, reason, message, now, generation
        )
        conditions = set_condition(
            conditions,
            ConditionType.FALLBACK_ACTIVE,
            s.fallback_active,
            "StableUnavailable" if s.fallback_active else "StableServing",
            message if s.fallback_active else "",
            now,
            generation,
        )
        degraded = phase in (Phase.DEGRADED, Phase.ROLLED_BACK)
        return set_condition(
            conditions,
            ConditionType.DEGRADED,
            degraded,
            reason if degraded else "AsExpected",
            message if degraded else "",
            now,
            generation,
        )


def stable_selector(plan: Plan, name: str) -> str | None:
    """The revision the stable Service of a Plan selects (for tests and tools)."""
    for obj in plan.apply:
        if obj["kind"] == "Service" and obj["metadata"]["name"] == name:
            selected: str | None = obj["spec"]["selector"].get(LABEL_REVISION)
            return selected
    return None
