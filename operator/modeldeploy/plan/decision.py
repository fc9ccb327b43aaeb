"""The seam between deciding and rendering: what one reconcile decided, as frozen values.

Deciding reads a :class:`Context` (the spec, the status as read, what is
observed and measured, ``now``) and passes a :class:`Record` (what it has
written down so far: events, history, bookkeeping) from step to step, each
step returning a new one. The steps live by concern: manual actions
(:mod:`~modeldeploy.plan.actions`), a candidate's stages
(:mod:`~modeldeploy.plan.stages`), the fallback trigger
(:mod:`~modeldeploy.plan.fallback`), monitoring
(:mod:`~modeldeploy.plan.monitoring`). The result is a :class:`Decision`;
rendering (:mod:`~modeldeploy.plan.render`) turns it into objects and a status
and never asks anything back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from modeldeploy.api import (
    CandidateRevision,
    HistoryEntry,
    MetricResult,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    NotificationEvent,
    OperatorState,
    Outcome,
    Phase,
    StableRevision,
)
from modeldeploy.plan.acceptance import RouteVerdict
from modeldeploy.plan.inputs import Inputs, Observed, Subject
from modeldeploy.plan.monitoring import MonitoringOutcome
from modeldeploy.plan.outputs import Event, Notice
from modeldeploy.plan.workloads import Owner

HISTORY_MESSAGE_LIMIT = 1024


@dataclass(frozen=True)
class Context:
    """What a decision reads; the same for every step of it.

    Invariants: ``spec`` passed validation (invalid specs never reach a
    decision); ``desired`` is the revision ``spec.model`` and ``spec.runtime``
    name; ``status`` is the status as read at the start of the reconcile.
    """

    subject: Subject
    spec: ModelDeploymentSpec
    observed: Observed
    status: ModelDeploymentStatus
    now: datetime
    inputs: Inputs
    desired: str

    @property
    def owner(self) -> Owner:
        return Owner(self.subject.name, self.subject.namespace, self.subject.uid)


@dataclass(frozen=True)
class Record:
    """What a decision has written down so far; each step returns a new one.

    Invariants, worst first: ``state.revisions`` holds the source of the
    desired revision and of every revision status still names (so rendering
    can always build their Deployments); ``history`` is append-only within a
    decision (trimming is rendering's business); ``rejected`` is a revision
    name or None, never the stable revision after a promotion of it.
    """

    state: OperatorState
    rejected: str | None
    history: tuple[HistoryEntry, ...]
    analysis: tuple[MetricResult, ...]
    events: tuple[Event, ...] = ()
    notices: tuple[Notice, ...] = ()

    def notify(self, event: NotificationEvent, key: str, summary: str, **facts: Any) -> Record:
        """The record with one more notice; ``key`` (with the event) names the transition uniquely."""
        notice = Notice(event, f"{event.value}/{key}"[:256], summary, **facts)
        return replace(self, notices=(*self.notices, notice))

    def event(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> Record:
        return replace(self, events=(*self.events, Event(type_, reason, message)))

    def entry(
        self, now: datetime, revision: str, version: str, outcome: Outcome, reason: str, message: str
    ) -> Record:
        """The record with one more history entry (a revision's chapter closed)."""
        entry = HistoryEntry(
            revision=revision,
            version=version,
            outcome=outcome,
            at=now,
            reason=reason,
            message=message[:HISTORY_MESSAGE_LIMIT],
        )
        return replace(self, history=(*self.history, entry))

    def with_state(self, **changes: Any) -> Record:
        return replace(self, state=self.state.model_copy(update=changes))

    def changed(self, **changes: Any) -> Record:
        return replace(self, **changes)


@dataclass(frozen=True)
class Transition:
    """Where the rollout stands after a step: revisions, phase, a one-line message, and the record.

    Invariant: ``candidate`` is never the stable revision; ``phase`` and
    ``message`` describe this pair.
    """

    stable: StableRevision | None
    candidate: CandidateRevision | None
    phase: Phase
    message: str
    record: Record


@dataclass(frozen=True)
class FallbackDecision:
    """Whether live traffic is on the fallback, and which earlier revision backs PreviousRevision mode.

    Invariant: ``active`` only when the fallback backend was seen Ready (rule 1).
    """

    active: bool = False
    previous_revision: str | None = None
    why: str | None = None
    """Why traffic is on the fallback (for the status message); None when it is not."""


@dataclass(frozen=True)
class Decision:
    """Everything one reconcile decided; rendering reads it and nothing else it could change.

    Invariants, worst first:

    - live traffic goes to ``candidate`` only at a weight or mirror its entered
      stage set, and to the fallback only when ``fallback.active`` (rule 1);
    - ``stable`` changes only by a promotion recorded in ``history`` with an
      Event (rule 5);
    - ``state`` is the complete new bookkeeping before rendering prunes what
      no revision needs any more;
    - ``rejection`` is the revision kept out until the spec changes or a retry;
    - while ``route.holds``, ``stable`` and the candidate's traffic are those of
      the status as read, or less (a rollback, a failover): traffic never moves
      forward on a route the gateway has not accepted.
    """

    stable: StableRevision | None
    candidate: CandidateRevision | None
    phase: Phase
    message: str
    events: tuple[Event, ...]
    history: tuple[HistoryEntry, ...]
    analysis: tuple[MetricResult, ...]
    rejection: str | None
    fallback: FallbackDecision
    monitoring: MonitoringOutcome
    state: OperatorState
    notices: tuple[Notice, ...] = ()
    route: RouteVerdict | None = None
    """The gateway's verdict on the HTTPRoute; while it ``holds``, no revision is retired."""
