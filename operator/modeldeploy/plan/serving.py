"""Planning for a valid, live ModelDeployment: the candidate's progress, promotion, rollback, undo.

State lives in ``status`` (rule 6): ``status.stable``, ``status.candidate`` (its
stage, canary step, applied weight and when the stage was entered),
``status.analysis`` and ``status.operatorState`` (the sources of past
revisions, a rejected revision, scale-down deadlines). Each reconcile decides
the next state from that, the observed children and this round's
measurements, then renders the objects for it (:mod:`modeldeploy.plan.render`).
"""

from __future__ import annotations

from datetime import datetime

from modeldeploy.api import (
    ActionType,
    CandidateRevision,
    FallbackCounters,
    FallbackMode,
    HistoryEntry,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    OperatorState,
    Outcome,
    Phase,
    StableRevision,
    Stage,
)
from modeldeploy.plan.fallback import step
from modeldeploy.plan.model import Event, Inputs, Observed, Plan, Subject
from modeldeploy.plan.monitoring import MonitoringOutcome, monitor
from modeldeploy.plan.render import Renderer
from modeldeploy.plan.revisions import revision_name, revision_source
from modeldeploy.plan.schedule import (
    fallback_check_due,
    next_wakeup,
    scale_down_deadline,
    stage_elapsed,
)
from modeldeploy.plan.stages import (
    Position,
    analysed,
    canary_weight,
    candidate_replicas,
    next_position,
    position_seconds,
    stages_of,
)
from modeldeploy.plan.workloads import Owner


class Serving:
    def __init__(
        self,
        subject: Subject,
        spec: ModelDeploymentSpec,
        observed: Observed,
        status: ModelDeploymentStatus,
        now: datetime,
        inputs: Inputs,
    ) -> None:
        self.subject, self.spec, self.observed, self.status, self.now = subject, spec, observed, status, now
        self.inputs = inputs
        self.desired = revision_name(subject.name, revision_source(spec.model, spec.runtime))
        self.state: OperatorState = status.operator_state or OperatorState()
        self.sources = dict(self.state.revisions)
        self.sources[self.desired] = revision_source(spec.model, spec.runtime)
        self.history = list(status.history)
        self.events: list[Event] = []
        self.analysis = list(inputs.analysis) if inputs.analysis is not None else list(status.analysis)
        self.rejected = self._current_rejection()
        self.promote_step = False
        self.promote_full = False
        self.fallback_active = False
        self.fallback_previous: str | None = None
        self.watch = MonitoringOutcome(list(status.monitoring), list(status.conditions), status.retrain)

    # --- the decision ----------------------------------------------------------------

    def plan(self) -> Plan:
        stable, candidate = self.status.stable, self.status.candidate
        candidate = self._handle_action(stable, candidate)
        candidate = self._supersede(stable, candidate)
        phase, message = Phase.STABLE, f"{stable.version} serving" if stable else "deploying"

        if candidate is None:
            if stable is not None and stable.revision == self.desired:
                phase, message = (Phase.PAUSED, "paused") if self.spec.paused else (Phase.STABLE, message)
            elif stable is not None and self.rejected == self.desired:
                phase = Phase.ROLLED_BACK
                message = (
                    (self.status.message or "rolled back")
                    if self.status.phase == Phase.ROLLED_BACK
                    else (f"{self.spec.model.version} was rolled back; it waits for a spec change or retry")
                )
            elif stable is not None and self.spec.paused:
                phase, message = (
                    Phase.PAUSED,
                    f"paused: {self.spec.model.version} waits for spec.paused false",
                )
            else:
                candidate = self._new_candidate(stable)

        if candidate is not None:
            stable, candidate, phase, message = self._progress(stable, candidate)

        why = self._fallback(stable)
        if why is not None:
            phase, message = Phase.DEGRADED, f"serving the fallback: {why}"
        self.watch = monitor(
            Owner(self.subject.name, self.subject.namespace, self.subject.uid),
            self.spec,
            stable,
            self.sources.get(stable.revision) if stable else None,
            list(self.inputs.monitoring)
            if self.inputs.monitoring is not None
            else list(self.status.monitoring),
            self.status.conditions,
            self.status.retrain,
            self.observed.jobs,
            self.inputs.webhook,
            self.now,
            self.subject.generation,
        )
        self.events += self.watch.events
        return Renderer(self).render(stable, candidate, phase, message)

    # --- fallback ------------------------------------------------------------------------

    def _fallback(self, stable: StableRevision | None) -> str | None:
        """Advance the fallback trigger; the reason traffic is on the fallback, or None."""
        fallback = self.spec.fallback
        self.fallback_active = False
        self.fallback_previous = None
        if fallback is None or stable is None:
            self.state = self.state.model_copy(update={"fallback": None})
            return None
        if fallback.mode == FallbackMode.PREVIOUS_REVISION:
            earlier = [
                h.revision
                for h in reversed(self.history)
                if h.outcome == Outcome.PROMOTED
                and h.revision != stable.revision
                and h.revision in self.sources
            ]
            self.fallback_previous = earlier[0] if earlier else None
            backend = self.observed.revisions.get(self.fallback_previous or "")
        else:
            backend = self.observed.fallback
        observed = self.observed.revisions.get(stable.revision)
        stable_ready = observed.ready if observed is not None else 0
        previous = self.state.fallback or FallbackCounters()
        state, reason = step(
            fallback,
            previous,
            stable_ready,
            self.inputs.fallback_failing,
            fallback_check_due(self.spec, self.state, self.now),
            backend is not None and backend.ready > 0,
            self.now,
        )
        self.state = self.state.model_copy(update={"fallback": state})
        self.fallback_active = state.active
        why = "the stable revision has no Ready replica" if stable_ready == 0 else "the trigger metrics fail"
        if reason == "FallbackActivated":
            self.events.append(
                Event("Warning", reason, f"all traffic to the fallback ({fallback.mode.value}): {why}")
            )
        elif reason == "FallbackRecovered":
            self.events.append(
                Event(
                    "Normal",
                    reason,
                    f"{stable.revision} healthy for {fallback.trigger.recover_after} checks; "
                    "traffic is back on it",
                )
            )
        elif (
            not state.active
            and (stable_ready == 0 and fallback.trigger.no_ready_replicas)
            and (backend is None or backend.ready == 0)
            and not previous.active
            and self.status.phase != Phase.DEGRADED
        ):
            self.events.append(
                Event(
                    "Warning",
                    "FallbackNotReady",
                    "the stable revision has no Ready replica and the fallback is not Ready either",
                )
            )
        return why if state.active else None

    # --- manual actions (status.action) ------------------------------------------------

    def _handle_action(
        self, stable: StableRevision | None, candidate: CandidateRevision | None
    ) -> CandidateRevision | None:
        action = self.status.action
        if action is None:
            return candidate
        kind = action.type
        if kind == ActionType.PROMOTE:
            self.promote_step = candidate is not None
        elif kind == ActionType.PROMOTE_FULL:
            self.promote_full = candidate is not None
        elif kind == ActionType.ABORT and candidate is not None and not self.state.undo:
            self._roll_back(candidate, Outcome.ABORTED, "Aborted", "aborted by request")
            return None
        elif kind == ActionType.RETRY and self.rejected is not None:
            self.rejected = None
            self.events.append(Event("Normal", "Retry", f"retrying {self.desired}"))
            return candidate
        elif kind == ActionType.UNDO:
            return self._undo(stable, candidate, action.to_revision)
        else:
            self.events.append(Event("Normal", "ActionIgnored", f"{kind.value}: nothing to do now"))
            return candidate
        self.events.append(Event("Normal", f"{kind.value}Requested", f"{kind.value} requested"))
        return candidate

    def _undo(
        self, stable: StableRevision | None, candidate: CandidateRevision | None, to: str | None
    ) -> CandidateRevision | None:
        current = stable.revision if stable else None
        if to is None:
            previous = [
                h for h in reversed(self.history) if h.outcome == Outcome.PROMOTED and h.revision != current
            ]
            to = previous[0].revision if previous else None
        if to is None or to not in self.sources or to == current:
            reason = "no earlier revision is known" if to is None else f"{to} is not in the kept history"
            if to == current:
                reason = f"{to} is already stable"
            self.events.append(Event("Warning", "UndoRefused", f"undo: {reason}"))
            return candidate
        if candidate is not None and candidate.revision != to:
            self._record(candidate.revision, candidate.version, Outcome.ABORTED, "Undo", f"undo to {to}")
        version = str(self.sources[to]["model"]["version"])
        self.rejected = self.desired if self.desired != to else None
        self.state = self.state.model_copy(update={"undo": True})
        self.events.append(
            Event("Normal", "Undo", f"returning to {to} ({version}); it takes traffic when Ready")
        )
        return CandidateRevision(revision=to, version=version, stage=Stage.PROMOTING, weight=0)

    # --- candidate lifecycle -------------------------------------------------------

    def _supersede(
        self, stable: StableRevision | None, candidate: CandidateRevision | None
    ) -> CandidateRevision | None:
        if candidate is None or self.state.undo:
            return candidate
        if candidate.revision == self.desired or (
            stable is not None and candidate.revision == stable.revision
        ):
            return candidate
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
        return None

    def _new_candidate(self, stable: StableRevision | None) -> CandidateRevision:
        what = "first revision" if stable is None else "new revision"
        self.events.append(
            Event("Normal", "RevisionCreated", f"{what} {self.desired} ({self.spec.model.version}) deploying")
        )
        self.analysis = []
        first = Stage.PROMOTING if stable is None else Stage.DEPLOYING
        return CandidateRevision(
            revision=self.desired, version=self.spec.model.version, stage=first, weight=0
        )

    def _progress(
        self, stable: StableRevision | None, candidate: CandidateRevision
    ) -> tuple[StableRevision | None, CandidateRevision | None, Phase, str]:
        position = Position(candidate.stage, candidate.step)
        observed = self.observed.revisions.get(candidate.revision)
        judgement = self.inputs.judgement
        entered = candidate.stage_started_at is not None

        if entered and analysed(self.spec, position) and judgement and judgement.kind in ("fail", "rollback"):
            self._roll_back(candidate, Outcome.ROLLED_BACK, judgement.reason, judgement.message)
            return stable, None, Phase.ROLLED_BACK, f"rolled back: {judgement.message}"
        if observed is not None and observed.deadline_exceeded and not entered:
            message = (
                f"{candidate.revision} did not get its replicas Ready within {self.spec.progress_deadline} "
                f"({observed.ready} ready); traffic stays on {stable.revision if stable else 'nothing'}"
            )
            if self.status.phase != Phase.DEGRADED:
                self.events.append(Event("Warning", "ProgressDeadlineExceeded", message))
            return stable, candidate, Phase.DEGRADED, message
        if self.spec.paused and not self.state.undo:
            return stable, candidate, Phase.PAUSED, f"paused at {_describe(self.spec, position)}"
        if self.promote_full and stable is not None and position.stage != Stage.PROMOTING:
            self.events.append(Event("Normal", "PromotedFull", "skipping the remaining stages by request"))
            return stable, self._move(candidate, Position(Stage.PROMOTING)), Phase.PROGRESSING, "promoting"
        if position.stage == Stage.DEPLOYING:
            target = next_position(self.spec, position)
            return stable, self._move(candidate, target), Phase.PROGRESSING, f"deploying {candidate.revision}"

        if not entered:
            wanted = self._replicas_for(candidate, position)
            if observed is None or not observed.ready_for(wanted):
                ready = observed.ready if observed else 0
                return (
                    stable,
                    candidate,
                    Phase.PROGRESSING,
                    (
                        f"{candidate.revision}: {ready}/{wanted} replicas ready "
                        f"for {_describe(self.spec, position)}"
                    ),
                )
            candidate = candidate.model_copy(
                update={
                    "stage_started_at": self.now,
                    "weight": canary_weight(self.spec, position) or candidate.weight,
                }
            )
            if position.stage == Stage.PROMOTING:
                return self._switch(stable, candidate)
            self.analysis = []
            self.events.append(Event("Normal", "StageStarted", f"{_describe(self.spec, position)} started"))
            return stable, candidate, Phase.PROGRESSING, f"{_describe(self.spec, position)} started"

        if position.stage == Stage.PROMOTING:
            return self._switch(stable, candidate)
        if position.stage == Stage.WARMUP:
            outcome = self.inputs.warmup
            if outcome is None:
                return stable, candidate, Phase.PROGRESSING, "warming up the candidate"
            if not outcome.passed:
                self._roll_back(candidate, Outcome.ROLLED_BACK, "WarmupFailed", outcome.message)
                return stable, None, Phase.ROLLED_BACK, f"rolled back: {outcome.message}"
            self.events.append(Event("Normal", "WarmupPassed", outcome.message))
            return (
                stable,
                self._move(candidate, next_position(self.spec, position)),
                Phase.PROGRESSING,
                outcome.message,
            )

        elapsed = stage_elapsed(candidate, self.now)
        duration = position_seconds(self.spec, position)
        needs_pass = analysed(self.spec, position)
        passed = not needs_pass or (judgement is not None and judgement.kind == "pass")
        describe = _describe(self.spec, position)
        if self.promote_step:
            return (
                stable,
                self._move(candidate, next_position(self.spec, position)),
                Phase.PROGRESSING,
                (f"{describe}: promoted by request"),
            )
        if duration is None:
            return (
                stable,
                candidate,
                Phase.PROGRESSING,
                f"{describe}: waiting for promote{self._analysis_note()}",
            )
        if elapsed >= duration and passed:
            return (
                stable,
                self._move(candidate, next_position(self.spec, position)),
                Phase.PROGRESSING,
                (f"{describe} passed{self._analysis_note()}"),
            )
        waiting = f"{max(0, int(duration - elapsed))}s left" if elapsed < duration else "analysis pending"
        return stable, candidate, Phase.PROGRESSING, f"{describe}: {waiting}{self._analysis_note()}"

    def _replicas_for(self, candidate: CandidateRevision, position: Position) -> int:
        if self.state.undo or self.status.stable is None:
            return self.spec.replicas
        return candidate_replicas(self.spec, position)

    def _move(self, candidate: CandidateRevision, target: Position) -> CandidateRevision:
        return candidate.model_copy(
            update={"stage": target.stage, "step": target.step, "stage_started_at": None}
        )

    def _switch(
        self, stable: StableRevision | None, candidate: CandidateRevision
    ) -> tuple[StableRevision | None, CandidateRevision | None, Phase, str]:
        undo = self.state.undo
        self.state = self.state.model_copy(update={"undo": False})
        reason = "Undo" if undo else ("InitialRevisionReady" if stable is None else "AnalysisPassed")
        if stable is not None and not undo and self.spec.strategy is None:
            reason = "RevisionReady"
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
        when = scale_down_deadline(self.spec, self.now)
        if stable is not None and when is not None:
            scale_down_at = {**self.state.scale_down_at, stable.revision: when}
            self.state = self.state.model_copy(update={"scale_down_at": scale_down_at})
        new = StableRevision(revision=candidate.revision, version=candidate.version, since=self.now)
        if undo and self.rejected is not None:
            return (
                new,
                None,
                Phase.ROLLED_BACK,
                (
                    f"undone to {candidate.revision}; "
                    f"{self.spec.model.version} waits for a spec change or retry"
                ),
            )
        return new, None, Phase.STABLE, f"{candidate.version} serving"

    def _roll_back(self, candidate: CandidateRevision, outcome: Outcome, reason: str, message: str) -> None:
        self._record(candidate.revision, candidate.version, outcome, reason, message)
        self.events.append(
            Event(
                "Warning",
                "RolledBack" if outcome == Outcome.ROLLED_BACK else "Aborted",
                f"{candidate.revision}: {message}; all traffic back on stable",
            )
        )
        self.rejected = candidate.revision
        self.state = self.state.model_copy(update={"undo": False})

    def _record(self, revision: str, version: str, outcome: Outcome, reason: str, message: str) -> None:
        self.history.append(
            HistoryEntry(
                revision=revision,
                version=version,
                outcome=outcome,
                at=self.now,
                reason=reason,
                message=message[:1024],
            )
        )

    def _current_rejection(self) -> str | None:
        rejected = self.state.rejected
        if rejected is None or rejected.generation != self.subject.generation:
            return None  # any spec change lifts a rejection
        return rejected.revision

    def _analysis_note(self) -> str:
        judgement = self.inputs.judgement
        if judgement is None or judgement.kind == "pending":
            return ""
        return f"; {judgement.message}"

    def next_wakeup(self, candidate: CandidateRevision | None) -> float | None:
        return next_wakeup(
            self.spec,
            candidate,
            self.analysis,
            self.state,
            self.status.stable is not None,
            self.watch.results,
            self.now,
        )


def _describe(spec: ModelDeploymentSpec, position: Position) -> str:
    if position.stage == Stage.CANARY and position.step is not None:
        steps = len([p for p in stages_of(spec) if p.stage == Stage.CANARY])
        return f"canary step {position.step + 1}/{steps} at {canary_weight(spec, position)}%"
    return {
        Stage.WARMUP: "warm-up",
        Stage.SHADOW: "shadow",
        Stage.BLUE_GREEN: "blue-green preview",
        Stage.PROMOTING: "promotion",
        Stage.DEPLOYING: "deployment",
    }[position.stage]
