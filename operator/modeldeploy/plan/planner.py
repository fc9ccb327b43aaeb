"""The planner: from what is declared and what is observed to what must be done.

``plan(subject, observed, now)`` is a pure function. It never reads a clock
(``now`` is an argument), never performs I/O, and returns the whole desired
state each time (level-triggered), so a reconcile after a crash at any moment
simply plans again from ``status`` and the observed children.

Lifecycle, in order of precedence: deletion (route first, then Deployments and
Services, then the finalizer), an invalid spec (touch nothing, say why),
retirement (drain, remove serving objects, keep the record), then serving.

The rules from DESIGN.md that live here:

1. live traffic never goes to a revision with no Ready replicas: a new
   revision takes traffic only once all its replicas are Ready, and the route
   is only created once some revision serves;
2. weights sum to 100 (checked by :class:`~modeldeploy.plan.routes.Split`);
3. the stable revision is scaled down only after another revision has taken
   all traffic, as observed on the stable Service;
5. every transition leaves a history entry and an Event;
6. all state lives in ``status``, including the sources of past revisions
   (``status.operatorState.revisions``), so any of them can be re-rendered.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from modeldeploy.api import (
    CandidateRevision,
    ConditionType,
    HistoryEntry,
    InvalidManifestError,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    ModelSpec,
    Outcome,
    Phase,
    Problem,
    Role,
    RuntimeSpec,
    StableRevision,
    Stage,
    TrafficShare,
    check_spec,
    parse_duration,
    parse_spec,
    parse_status,
)
from modeldeploy.plan.conditions import set_condition
from modeldeploy.plan.model import FINALIZER, Event, ObjectRef, Observed, Plan, Subject
from modeldeploy.plan.revisions import revision_name, revision_source
from modeldeploy.plan.routes import Backend, Split, render_route
from modeldeploy.plan.workloads import Owner, revision_deployment, service

ROUTE_KINDS = ("HTTPRoute", "VirtualService")


def plan(subject: Subject, observed: Observed, now: datetime) -> Plan:
    status = _lenient_status(subject.status)
    if subject.deleting:
        return _plan_deletion(subject, observed, status)
    try:
        spec = parse_spec(subject.spec)
        problems = check_spec(spec)
    except InvalidManifestError as error:
        problems = list(error.problems)
    if problems:
        return _plan_invalid(subject, status, problems, now)
    if spec.retired:
        return _plan_retired(subject, spec, observed, status, now)
    return _Serving(subject, spec, observed, status, now).plan()


def _lenient_status(raw: Mapping[str, Any]) -> ModelDeploymentStatus:
    try:
        return parse_status(raw)
    except InvalidManifestError:
        # A status we cannot read (hand-edited, or from a future version) is started afresh
        # rather than crashing the operator; the children are found again by label.
        return ModelDeploymentStatus()


def _wire(status: ModelDeploymentStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- deletion, invalid, retired -------------------------------------------------


def _plan_deletion(subject: Subject, observed: Observed, status: ModelDeploymentStatus) -> Plan:
    if FINALIZER not in subject.finalizers:
        return Plan()
    routes = tuple(ref for ref in observed.children if ref.kind in ROUTE_KINDS)
    if routes:
        return Plan(delete=routes)
    return Plan(delete=tuple(ref for ref in observed.children if ref.kind not in ROUTE_KINDS))


def _plan_invalid(
    subject: Subject,
    status: ModelDeploymentStatus,
    problems: list[Problem],
    now: datetime,
) -> Plan:
    message = "; ".join(str(p) for p in problems)[:4000]
    previous = status.condition(ConditionType.INVALID_SPEC)
    conditions = set_condition(
        status.conditions, ConditionType.INVALID_SPEC, True, "InvalidSpec", message, now, subject.generation
    )
    new = status.model_copy(
        update={
            "phase": Phase.INVALID,
            "message": f"invalid spec: {message}",
            "observed_generation": subject.generation,
            "conditions": conditions,
        }
    )
    events: tuple[Event, ...] = ()
    if previous is None or previous.status != "True" or previous.message != message:
        events = (Event("Warning", "InvalidSpec", f"{message}; no serving object was changed"),)
    return Plan(status=_wire(new), events=events)


def _plan_retired(
    subject: Subject,
    spec: ModelDeploymentSpec,
    observed: Observed,
    status: ModelDeploymentStatus,
    now: datetime,
) -> Plan:
    routes = tuple(ref for ref in observed.children if ref.kind in ROUTE_KINDS)
    rest = tuple(ref for ref in observed.children if ref.kind not in ROUTE_KINDS)
    deletions = routes or rest
    history = list(status.history)
    events: list[Event] = []
    if status.phase != Phase.RETIRED:
        events.append(Event("Normal", "Retired", "traffic drained; serving objects are being removed"))
        for revision in (status.stable, status.candidate):
            if revision is not None:
                history.append(
                    HistoryEntry(
                        revision=revision.revision,
                        version=revision.version,
                        outcome=Outcome.RETIRED,
                        at=now,
                        reason="Retired",
                        message="spec.retired is true",
                    )
                )
    conditions = set_condition(
        status.conditions, ConditionType.INVALID_SPEC, False, "Valid", "", now, subject.generation
    )
    for type_, reason in (
        (ConditionType.READY, "Retired"),
        (ConditionType.AVAILABLE, "Retired"),
        (ConditionType.PROGRESSING, "Retired"),
    ):
        conditions = set_condition(conditions, type_, False, reason, "retired", now, subject.generation)
    message = "retired: removing serving objects" if deletions else "retired: no serving objects remain"
    new = status.model_copy(
        update={
            "phase": Phase.RETIRED,
            "message": message,
            "observed_generation": subject.generation,
            "router": spec.router,
            "stable": None,
            "candidate": None,
            "traffic": [],
            "history": _trim(history, spec.revision_history_limit),
            "conditions": conditions,
            "operator_state": None,
        }
    )
    return Plan(delete=deletions, status=_wire(new), events=tuple(events))


def _trim(history: list[HistoryEntry], limit: int) -> list[HistoryEntry]:
    return history[-limit:] if limit > 0 else []


# --- serving --------------------------------------------------------------------


class _Serving:
    """Planning for a valid, live ModelDeployment: revisions, Services, route, status."""

    def __init__(
        self,
        subject: Subject,
        spec: ModelDeploymentSpec,
        observed: Observed,
        status: ModelDeploymentStatus,
        now: datetime,
    ) -> None:
        self.subject, self.spec, self.observed, self.status, self.now = subject, spec, observed, status, now
        self.owner = Owner(subject.name, subject.namespace, subject.uid)
        self.source = revision_source(spec.model, spec.runtime)
        self.desired = revision_name(subject.name, self.source)
        state = status.operator_state or {}
        self.sources: dict[str, dict[str, Any]] = dict(state.get("revisions") or {})
        self.sources[self.desired] = self.source
        self.history = list(status.history)
        self.events: list[Event] = []
        self.deadline = max(1, int(parse_duration(spec.progress_deadline)))

    # the decision ------------------------------------------------------------------

    def plan(self) -> Plan:
        stable = self.status.stable
        candidate = self.status.candidate
        paused = self.spec.paused
        phase: Phase
        message: str

        if (
            candidate is not None
            and candidate.revision != self.desired
            and (stable is None or candidate.revision != stable.revision)
        ):
            self._record(
                candidate.revision,
                candidate.version,
                Outcome.SUPERSEDED,
                "SpecChanged",
                f"replaced by {self.desired} before it was promoted",
            )
            self.events.append(
                Event("Normal", "Superseded", f"candidate {candidate.revision} replaced by a newer spec")
            )
            candidate = None

        if stable is not None and stable.revision == self.desired:
            candidate = None
            phase, message = (
                (Phase.PAUSED, "paused") if paused else (Phase.STABLE, f"{stable.version} serving")
            )
        elif paused and candidate is None:
            phase = Phase.PAUSED
            message = f"paused: {self.spec.model.version} waits until spec.paused is false"
        else:
            if candidate is None:
                candidate = CandidateRevision(
                    revision=self.desired,
                    version=self.spec.model.version,
                    stage=Stage.DEPLOYING,
                    step=None,
                    weight=0,
                    stage_started_at=self.now,
                )
                what = "first revision" if stable is None else "new revision"
                self.events.append(
                    Event(
                        "Normal",
                        "RevisionCreated",
                        f"{what} {self.desired} ({self.spec.model.version}) deploying",
                    )
                )
            observed = self.observed.revisions.get(candidate.revision)
            ready = observed.ready if observed else 0
            if observed is not None and observed.deadline_exceeded:
                phase = Phase.DEGRADED
                message = (
                    f"{candidate.revision} did not become ready within {self.deadline}s "
                    f"({ready}/{self.spec.replicas} ready); traffic stays on "
                    f"{stable.revision if stable else 'nothing'}"
                )
                if self.status.phase != Phase.DEGRADED:
                    self.events.append(Event("Warning", "ProgressDeadlineExceeded", message))
            elif paused:
                phase, message = (
                    Phase.PAUSED,
                    f"paused with {candidate.revision} at {ready}/{self.spec.replicas} ready",
                )
            elif observed is not None and observed.serves(self.spec.replicas):
                stable = self._promote(candidate, stable)
                candidate = None
                phase, message = Phase.STABLE, f"{stable.version} serving"
            else:
                phase = Phase.PROGRESSING
                message = f"{candidate.revision}: {ready}/{self.spec.replicas} replicas ready"

        return self._render(stable, candidate, phase, message)

    def _promote(self, candidate: CandidateRevision, stable: StableRevision | None) -> StableRevision:
        reason = "InitialRevisionReady" if stable is None else "RevisionReady"
        self._record(
            candidate.revision,
            candidate.version,
            Outcome.PROMOTED,
            reason,
            f"all {self.spec.replicas} replicas ready",
        )
        self.events.append(
            Event("Normal", "Promoted", f"{candidate.revision} ({candidate.version}) takes all traffic")
        )
        return StableRevision(revision=candidate.revision, version=candidate.version, since=self.now)

    def _record(self, revision: str, version: str, outcome: Outcome, reason: str, message: str) -> None:
        self.history.append(
            HistoryEntry(
                revision=revision,
                version=version,
                outcome=outcome,
                at=self.now,
                reason=reason,
                message=message,
            )
        )

    # the objects -------------------------------------------------------------------

    def _render(
        self,
        stable: StableRevision | None,
        candidate: CandidateRevision | None,
        phase: Phase,
        message: str,
    ) -> Plan:
        spec, observed = self.spec, self.observed
        history = _trim(self.history, spec.revision_history_limit)
        live = {r.revision for r in (stable, candidate) if r is not None}
        kept = live | {h.revision for h in history}
        sources = {name: src for name, src in self.sources.items() if name in kept}

        apply: list[dict[str, Any]] = []
        for revision in sorted(live):
            apply.append(self._deployment(revision, sources[revision], spec.replicas))

        serving = stable.revision if stable else (candidate.revision if candidate else None)
        apply.append(service(self.owner, self.owner.stable_service, serving, spec.runtime.port, "stable"))
        apply.append(
            service(
                self.owner,
                self.owner.candidate_service,
                candidate.revision if candidate else None,
                spec.runtime.port,
                "candidate",
            )
        )

        split = Split((Backend("stable", self.owner.stable_service, 100),))
        if stable is not None:
            route = render_route(self.owner, spec, split)
            if route is not None:
                apply.append(route)

        current_route = next((o["kind"] for o in apply if o["kind"] in ROUTE_KINDS), None)
        deletions = [
            ref for ref in observed.children if ref.kind in ROUTE_KINDS and ref.kind != current_route
        ]
        scale: list[tuple[str, int]] = []
        switched = stable is not None and observed.stable_service_revision == stable.revision
        for name, state in sorted(observed.revisions.items()):
            if name in live:
                continue
            if name not in kept:
                if switched:
                    deletions.append(ObjectRef("apps/v1", "Deployment", self.subject.namespace, name))
            elif switched and state.replicas != 0:
                scale.append((name, 0))

        new = self.status.model_copy(
            update={
                "phase": phase,
                "message": message,
                "observed_generation": self.subject.generation,
                "router": spec.router,
                "stable": stable,
                "candidate": candidate,
                "traffic": [TrafficShare(revision=stable.revision, role=Role.STABLE, weight=100)]
                if stable
                else [],
                "history": history,
                "conditions": self._conditions(stable, candidate, phase, message),
                "operator_state": {**(self.status.operator_state or {}), "revisions": sources},
            }
        )
        return Plan(
            apply=tuple(apply),
            scale=tuple(scale),
            delete=tuple(deletions),
            status=_wire(new),
            events=tuple(self.events),
        )

    def _deployment(self, revision: str, source: dict[str, Any], replicas: int) -> dict[str, Any]:
        model = ModelSpec.model_validate(source["model"], by_alias=True)
        runtime = RuntimeSpec.model_validate(source["runtime"], by_alias=True)
        return revision_deployment(self.owner, revision, source, model, runtime, replicas, self.deadline)

    def _conditions(
        self, stable: StableRevision | None, candidate: CandidateRevision | None, phase: Phase, message: str
    ) -> list[Any]:
        generation, now = self.subject.generation, self.now
        stable_state = self.observed.revisions.get(stable.revision) if stable else None
        ready = stable_state is not None and stable_state.serves(self.spec.replicas)
        available = stable_state is not None and stable_state.ready > 0
        conditions = set_condition(
            self.status.conditions, ConditionType.INVALID_SPEC, False, "Valid", "", now, generation
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
            f"{stable_state.ready if stable_state else 0} stable replicas ready",
            now,
            generation,
        )
        progressing = candidate is not None and phase in (Phase.PROGRESSING, Phase.PAUSED)
        reason = {Phase.DEGRADED: "ProgressDeadlineExceeded", Phase.PAUSED: "Paused"}.get(
            phase, "NewRevisionDeploying" if progressing else "RolloutComplete"
        )
        conditions = set_condition(
            conditions, ConditionType.PROGRESSING, progressing, reason, message, now, generation
        )
        return set_condition(
            conditions,
            ConditionType.DEGRADED,
            phase == Phase.DEGRADED,
            "ProgressDeadlineExceeded" if phase == Phase.DEGRADED else "AsExpected",
            message if phase == Phase.DEGRADED else "",
            now,
            generation,
        )
