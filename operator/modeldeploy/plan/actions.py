"""Manual actions (``status.action``): promote, promote fully, abort, retry, undo.

A person or ``kubectl modeldeploy`` patches a request into the status
subresource (never into ``spec``, which a GitOps tool would revert). The
request is carried out in the reconcile that sees it and then cleared, so a
repeated reconcile never carries it out twice:

- ``Promote`` leaves the current pause or step (read by :mod:`~modeldeploy.plan.stages`);
- ``PromoteFull`` skips the remaining stages and analysis;
- ``Abort`` rolls the candidate back (refused while an undo is under way);
- ``Retry`` lifts the rejection of the desired revision;
- ``Undo`` returns to an earlier revision whose source is still kept: it
  becomes a candidate going straight to promotion once Ready.
"""

from __future__ import annotations

from dataclasses import dataclass

from modeldeploy.api import (
    ActionType,
    CandidateRevision,
    Outcome,
    StableRevision,
    Stage,
)
from modeldeploy.plan.decision import Context, Record
from modeldeploy.plan.stages import roll_back


@dataclass(frozen=True)
class Acted:
    """The candidate and record after a manual request, and what it asks of the stage logic.

    Invariant: at most one of ``promote_step`` and ``promote_full`` is set, and
    only when there is a candidate to promote.
    """

    candidate: CandidateRevision | None
    record: Record
    promote_step: bool = False
    promote_full: bool = False


def carry_out(
    ctx: Context, stable: StableRevision | None, candidate: CandidateRevision | None, record: Record
) -> Acted:
    """Carry out ``status.action``, if any."""
    action = ctx.status.action
    if action is None:
        return Acted(candidate, record)
    kind = action.type
    if kind in (ActionType.PROMOTE, ActionType.PROMOTE_FULL):
        record = record.event("Normal", f"{kind.value}Requested", f"{kind.value} requested")
        return Acted(
            candidate,
            record,
            promote_step=kind == ActionType.PROMOTE and candidate is not None,
            promote_full=kind == ActionType.PROMOTE_FULL and candidate is not None,
        )
    if kind == ActionType.ABORT and candidate is not None and not record.state.undo:
        return Acted(
            None, roll_back(ctx, record, candidate, Outcome.ABORTED, "Aborted", "aborted by request")
        )
    if kind == ActionType.RETRY and record.rejected is not None:
        return Acted(
            candidate, record.changed(rejected=None).event("Normal", "Retry", f"retrying {ctx.desired}")
        )
    if kind == ActionType.UNDO:
        return _undo(ctx, stable, candidate, record, action.to_revision)
    return Acted(candidate, record.event("Normal", "ActionIgnored", f"{kind.value}: nothing to do now"))


def _undo(
    ctx: Context,
    stable: StableRevision | None,
    candidate: CandidateRevision | None,
    record: Record,
    to: str | None,
) -> Acted:
    current = stable.revision if stable else None
    sources = record.state.revisions
    if to is None:
        previous = [
            h for h in reversed(record.history) if h.outcome == Outcome.PROMOTED and h.revision != current
        ]
        to = previous[0].revision if previous else None
    if to is None or to not in sources or to == current:
        reason = "no earlier revision is known" if to is None else f"{to} is not in the kept history"
        if to == current:
            reason = f"{to} is already stable"
        return Acted(candidate, record.event("Warning", "UndoRefused", f"undo: {reason}"))
    if candidate is not None and candidate.revision != to:
        record = record.entry(
            ctx.now, candidate.revision, candidate.version, Outcome.ABORTED, "Undo", f"undo to {to}"
        )
    version = str(sources[to]["model"]["version"])
    record = (
        record.changed(rejected=ctx.desired if ctx.desired != to else None)
        .with_state(undo=True)
        .event("Normal", "Undo", f"returning to {to} ({version}); it takes traffic when Ready")
    )
    return Acted(CandidateRevision(revision=to, version=version, stage=Stage.PROMOTING, weight=0), record)
