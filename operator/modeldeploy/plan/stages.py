"""Advancing a candidate: supersede, start, enter a stage, wait, move on, promote or roll back.

A candidate passes through the positions of :mod:`~modeldeploy.plan.positions`
one at a time. A position is *entered* once the candidate has the replicas it
needs Ready (only then does it get the position's traffic, and its clock
starts); it is *left* when its time is up and the analysis passed, when
someone promotes, or by a rollback when the analysis or warm-up fails. Each
function here returns a :class:`~modeldeploy.plan.decision.Transition`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from modeldeploy.api import (
    CandidateRevision,
    ModelDeploymentSpec,
    NotificationEvent,
    Outcome,
    Phase,
    StableRevision,
    Stage,
    VerdictKind,
)
from modeldeploy.api.times import format_time
from modeldeploy.plan.decision import Context, Record, Transition
from modeldeploy.plan.inputs import RevisionState
from modeldeploy.plan.notices import metric_facts
from modeldeploy.plan.positions import (
    Position,
    analysed,
    canary_weight,
    candidate_replicas,
    mirror_percent,
    next_position,
    position_seconds,
    stages_of,
)
from modeldeploy.plan.schedule import stage_elapsed
from modeldeploy.plan.sizing import current_size, needed_for, starting_size


def advance(
    ctx: Context,
    stable: StableRevision | None,
    candidate: CandidateRevision | None,
    record: Record,
    *,
    promote_step: bool = False,
    promote_full: bool = False,
    hold: str | None = None,
) -> Transition:
    """The rollout's next state: the candidate (a new one for a changed spec) one step further.

    ``hold`` (why, when the gateway has not accepted the route): no step that
    would move live traffic forward is taken; rolling back still is.
    """
    spec = ctx.spec
    candidate, record = _supersede(ctx, stable, candidate, record)
    if candidate is None:
        serving = f"{stable.version} serving" if stable else "deploying"
        if stable is not None and stable.revision == ctx.desired:
            if spec.paused:
                return Transition(stable, None, Phase.PAUSED, "paused", record)
            return Transition(stable, None, Phase.STABLE, serving, record)
        if stable is not None and record.rejected == ctx.desired:
            message = (
                (ctx.status.message or "rolled back")
                if ctx.status.phase == Phase.ROLLED_BACK
                else f"{spec.model.version} was rolled back; it waits for a spec change or retry"
            )
            return Transition(stable, None, Phase.ROLLED_BACK, message, record)
        if stable is not None and spec.paused:
            message = f"paused: {spec.model.version} waits for spec.paused false"
            return Transition(stable, None, Phase.PAUSED, message, record)
        candidate, record = _new_candidate(ctx, stable, record)
    moved = _progress(ctx, stable, candidate, record, promote_step, promote_full)
    if hold is not None and moves_traffic_forward(spec, stable, candidate, moved):
        position = describe(spec, Position(candidate.stage, candidate.step))
        return Transition(stable, candidate, Phase.PROGRESSING, f"holding at {position}: {hold}", record)
    return moved


def moves_traffic_forward(
    spec: ModelDeploymentSpec,
    stable: StableRevision | None,
    candidate: CandidateRevision,
    after: Transition,
) -> bool:
    """Whether a transition gives the candidate more live traffic, or a new revision all of it."""
    if stable is not None and (after.stable is None or after.stable.revision != stable.revision):
        return True
    moved = after.candidate
    if moved is None or moved.revision != candidate.revision:
        return False
    return moved.weight > candidate.weight or _mirror(spec, moved) > _mirror(spec, candidate)


def _mirror(spec: ModelDeploymentSpec, candidate: CandidateRevision) -> int:
    if candidate.stage_started_at is None:
        return 0
    return mirror_percent(spec, Position(candidate.stage, candidate.step))


def roll_back(
    ctx: Context,
    record: Record,
    candidate: CandidateRevision,
    outcome: Outcome,
    reason: str,
    message: str,
    metric: str | None = None,
) -> Record:
    """The candidate leaves: history, a Warning Event, rejected until the spec changes or a retry."""
    event = NotificationEvent.ROLLED_BACK if outcome == Outcome.ROLLED_BACK else NotificationEvent.ABORTED
    metrics = ctx.spec.analysis.metrics if ctx.spec.analysis else []
    return (
        record.notify(
            event,
            f"{candidate.revision}/{format_time(ctx.now)}",
            message,
            revision=candidate.revision,
            version=candidate.version,
            stage=describe(ctx.spec, Position(candidate.stage, candidate.step)),
            **metric_facts(metrics, record.analysis, metric),
        )
        .entry(ctx.now, candidate.revision, candidate.version, outcome, reason, message)
        .event(
            "Warning",
            "RolledBack" if outcome == Outcome.ROLLED_BACK else "Aborted",
            f"{candidate.revision}: {message}; all traffic back on stable",
        )
        .changed(rejected=candidate.revision)
        .with_state(undo=False)
    )


def describe(spec: ModelDeploymentSpec, position: Position) -> str:
    """A position as people read it: ``canary step 2/3 at 25%``."""
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


def _supersede(
    ctx: Context, stable: StableRevision | None, candidate: CandidateRevision | None, record: Record
) -> tuple[CandidateRevision | None, Record]:
    """A candidate the spec no longer asks for is dropped (recorded), unless an undo brought it."""
    if candidate is None or record.state.undo:
        return candidate, record
    if candidate.revision == ctx.desired or (stable is not None and candidate.revision == stable.revision):
        return candidate, record
    record = record.entry(
        ctx.now,
        candidate.revision,
        candidate.version,
        Outcome.SUPERSEDED,
        "SpecChanged",
        f"replaced by {ctx.desired} before it was promoted",
    ).event("Normal", "Superseded", f"candidate {candidate.revision} replaced by a newer spec")
    return None, record


def _new_candidate(
    ctx: Context, stable: StableRevision | None, record: Record
) -> tuple[CandidateRevision, Record]:
    what = "first revision" if stable is None else "new revision"
    version = ctx.spec.model.version
    record = (
        record.event("Normal", "RevisionCreated", f"{what} {ctx.desired} ({version}) deploying")
        .changed(analysis=())
        .notify(
            NotificationEvent.ROLLOUT_STARTED,
            f"{ctx.desired}/{format_time(ctx.now)}",
            f"{what} {ctx.desired} ({version}) deploying",
            revision=ctx.desired,
            version=version,
        )
    )
    first = Stage.PROMOTING if stable is None else Stage.DEPLOYING
    return CandidateRevision(revision=ctx.desired, version=version, stage=first, weight=0), record


def _progress(
    ctx: Context,
    stable: StableRevision | None,
    candidate: CandidateRevision,
    record: Record,
    promote_step: bool,
    promote_full: bool,
) -> Transition:
    spec, now = ctx.spec, ctx.now
    position = Position(candidate.stage, candidate.step)
    observed = ctx.observed.revisions.get(candidate.revision)
    verdict = ctx.inputs.verdict
    entered = candidate.stage_started_at is not None

    if entered and analysed(spec, position) and verdict is not None and verdict.rollback:
        record = roll_back(
            ctx, record, candidate, Outcome.ROLLED_BACK, verdict.reason, verdict.message, verdict.metric
        )
        return Transition(stable, None, Phase.ROLLED_BACK, f"rolled back: {verdict.message}", record)
    if observed is not None and observed.deadline_exceeded and not entered:
        message = (
            f"{candidate.revision} did not get its replicas Ready within {spec.progress_deadline} "
            f"({observed.ready} ready{_cannot_create(observed)}); traffic stays on "
            f"{stable.revision if stable else 'nothing'}"
        )
        if ctx.status.phase != Phase.DEGRADED:
            record = record.event("Warning", "ProgressDeadlineExceeded", message)
        return Transition(stable, candidate, Phase.DEGRADED, message, record)
    if spec.paused and not record.state.undo:
        return Transition(stable, candidate, Phase.PAUSED, f"paused at {describe(spec, position)}", record)
    if promote_full and stable is not None and position.stage != Stage.PROMOTING:
        record = record.event("Normal", "PromotedFull", "skipping the remaining stages by request")
        return Transition(
            stable, _move(candidate, Position(Stage.PROMOTING)), Phase.PROGRESSING, "promoting", record
        )
    if position.stage == Stage.DEPLOYING:
        # its Deployment is created in this plan: it waits for that position's replicas from here,
        # in the words it waits in, so the status written now stays until they are Ready
        candidate = _move(candidate, next_position(spec, position))
        position = Position(candidate.stage, candidate.step)

    if not entered:
        entering = _enter(ctx, stable, candidate, record)
        if entering is not None:
            return entering
        wanted = _replicas_for(ctx, record, position)
        ready = observed.ready if observed else 0
        why = _cannot_create(observed)
        message = f"{candidate.revision}: {ready}/{wanted} replicas ready for {describe(spec, position)}"
        message += why
        if why and message != ctx.status.message:
            record = record.event("Warning", "FailedCreate", message)
        return Transition(stable, candidate, Phase.PROGRESSING, message, record)

    if position.stage == Stage.PROMOTING:
        return _switch(ctx, stable, candidate, record)
    if position.stage == Stage.WARMUP:
        outcome = ctx.inputs.warmup
        if outcome is None:
            return Transition(stable, candidate, Phase.PROGRESSING, "warming up the candidate", record)
        if not outcome.passed:
            record = roll_back(ctx, record, candidate, Outcome.ROLLED_BACK, "WarmupFailed", outcome.message)
            return Transition(stable, None, Phase.ROLLED_BACK, f"rolled back: {outcome.message}", record)
        record = record.event("Normal", "WarmupPassed", outcome.message)
        moved = _move(candidate, next_position(spec, position))
        return _onward(ctx, stable, moved, record, outcome.message)

    elapsed = stage_elapsed(candidate, now)
    duration = position_seconds(spec, position)
    passed = not analysed(spec, position) or (verdict is not None and verdict.passed)
    described = describe(spec, position)
    if analysed(spec, position) and verdict is not None and verdict.kind == VerdictKind.HOLD:
        # Held while the stage lasts: one notice per stage entered (its key is the stage's start).
        record = record.notify(
            NotificationEvent.ANALYSIS_INCONCLUSIVE,
            f"{candidate.revision}/{position.stage.value}/{position.step}/{format_time(elapsed_from(candidate))}",
            f"{described} held: {verdict.message}",
            revision=candidate.revision,
            version=candidate.version,
            stage=described,
            **metric_facts(spec.analysis.metrics if spec.analysis else [], record.analysis, verdict.metric),
        )
    note = _analysis_note(ctx)
    if promote_step:
        moved = _move(candidate, next_position(spec, position))
        return _onward(ctx, stable, moved, record, f"{described}: promoted by request")
    if duration is not None and elapsed >= duration and passed:
        moved = _move(candidate, next_position(spec, position))
        return _onward(ctx, stable, moved, record, f"{described} passed{note}")
    waiting = _waiting(candidate, duration, elapsed)
    return Transition(stable, candidate, Phase.PROGRESSING, f"{described}{waiting}{note}", record)


def _enter(
    ctx: Context, stable: StableRevision | None, candidate: CandidateRevision, record: Record
) -> Transition | None:
    """The candidate entering its position now: its traffic, its clock started; None while it lacks
    the Ready replicas the position needs (rule 1: no traffic before them)."""
    spec, now = ctx.spec, ctx.now
    position = Position(candidate.stage, candidate.step)
    observed = ctx.observed.revisions.get(candidate.revision)
    if observed is None or not observed.ready_for(_replicas_for(ctx, record, position)):
        return None
    candidate = candidate.model_copy(
        update={"stage_started_at": now, "weight": canary_weight(spec, position) or candidate.weight}
    )
    if position.stage == Stage.PROMOTING:
        return _switch(ctx, stable, candidate, record)
    started = f"{describe(spec, position)} started"
    record = (
        record.changed(analysis=())
        .event("Normal", "StageStarted", started)
        .notify(
            NotificationEvent.STAGE_ENTERED,
            f"{candidate.revision}/{position.stage.value}/{position.step}/{format_time(now)}",
            started,
            revision=candidate.revision,
            version=candidate.version,
            stage=describe(spec, position),
        )
    )
    # status says from the start what it says while the stage lasts: no second write for it
    message = describe(spec, position) + _waiting(candidate, position_seconds(spec, position), 0.0)
    return Transition(stable, candidate, Phase.PROGRESSING, message, record)


def _onward(
    ctx: Context, stable: StableRevision | None, moved: CandidateRevision, record: Record, message: str
) -> Transition:
    """A candidate moved on to its next position: entered in the same plan when it has the replicas
    that position needs Ready already (most canary steps), so a step's end and the next one's start
    are one status write and one pass, not two; else it waits for them, saying ``message``."""
    entering = _enter(ctx, stable, moved, record)
    return entering or Transition(stable, moved, Phase.PROGRESSING, message, record)


def _waiting(candidate: CandidateRevision, duration: float | None, elapsed: float) -> str:
    """What an entered stage waits for, in words that stay the same while it waits: its end time,
    not a countdown, which would rewrite status at every reconcile (every round of analysis)."""
    if duration is None:
        return ": waiting for promote"
    if elapsed < duration:
        return f" until {format_time(elapsed_from(candidate) + timedelta(seconds=duration))}"
    return ": analysis pending"


def _switch(
    ctx: Context, stable: StableRevision | None, candidate: CandidateRevision, record: Record
) -> Transition:
    """Promotion: the candidate takes all traffic; the former stable drains (see plan/drain.py)."""
    spec, now = ctx.spec, ctx.now
    undo = record.state.undo
    ready = _replicas_for(ctx, record, Position(Stage.PROMOTING))  # with an HPA: the stable's current count
    reason = "Undo" if undo else ("InitialRevisionReady" if stable is None else "AnalysisPassed")
    if stable is not None and not undo and spec.strategy is None:
        reason = "RevisionReady"
    record = (
        record.with_state(undo=False)
        .entry(
            now,
            candidate.revision,
            candidate.version,
            Outcome.PROMOTED,
            reason,
            f"all {ready} replicas ready",
        )
        .event("Normal", "Promoted", f"{candidate.revision} ({candidate.version}) takes all traffic")
        .notify(
            NotificationEvent.PROMOTED,
            f"{candidate.revision}/{format_time(now)}",
            f"{candidate.revision} ({candidate.version}) takes all traffic",
            revision=candidate.revision,
            version=candidate.version,
            stage="promotion",
        )
    )
    new = StableRevision(revision=candidate.revision, version=candidate.version, since=now)
    if undo and record.rejected is not None:
        message = f"undone to {candidate.revision}; {spec.model.version} waits for a spec change or retry"
        return Transition(new, None, Phase.ROLLED_BACK, message, record)
    return Transition(new, None, Phase.STABLE, f"{candidate.version} serving", record)


def _replicas_for(ctx: Context, record: Record, position: Position) -> int:
    spec, stable = ctx.spec, ctx.status.stable
    if spec.autoscaling is not None:
        if stable is None:
            return starting_size(spec)
        if record.state.undo:
            position = Position(Stage.PROMOTING)
        return needed_for(spec, position, current_size(spec, ctx.observed, stable.revision))
    if record.state.undo or stable is None:
        return spec.replicas
    return candidate_replicas(spec, position)


def elapsed_from(candidate: CandidateRevision) -> datetime:
    """When the candidate entered its current stage (only called for an entered stage)."""
    assert candidate.stage_started_at is not None
    return candidate.stage_started_at


def _move(candidate: CandidateRevision, target: Position) -> CandidateRevision:
    return candidate.model_copy(update={"stage": target.stage, "step": target.step, "stage_started_at": None})


def _analysis_note(ctx: Context) -> str:
    verdict = ctx.inputs.verdict
    if verdict is None or verdict.kind == VerdictKind.PENDING:
        return ""
    return f"; {verdict.message}"


def _cannot_create(observed: RevisionState | None) -> str:
    """Why the revision's pods cannot be created, for a message (empty when nothing says so)."""
    if observed is None or not observed.failure:
        return ""
    return f"; pods cannot be created: {observed.failure}"
