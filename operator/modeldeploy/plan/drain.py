"""Draining: a revision the route moves all live traffic away from keeps running for a while.

A route change reaches the gateway's data plane some time after it is
written, and requests already sent to the old backend are still in flight.
So a revision that carried live traffic when this round began (it is in
``status.traffic``, the split last applied) and carries none now (it is
neither the stable revision nor the candidate any more) gets a scale-down
deadline in ``operatorState.scaleDownAt``: ``strategy.scaleDownDelay``
(30s by default, as Argo Rollouts' ``scaleDownDelaySeconds``), or
``blueGreen.scaleDownDelay`` for a blue-green's former stable revision. It
keeps its replicas until then; :mod:`~modeldeploy.plan.cleanup` scales it down
or deletes it afterwards. This covers a promotion, an undo, a rollback, an
abort and a superseded candidate alike.
"""

from __future__ import annotations

from modeldeploy.api import CandidateRevision, Role, StableRevision
from modeldeploy.plan.decision import Context, Record
from modeldeploy.plan.schedule import scale_down_deadline


def drain_leavers(
    ctx: Context, stable: StableRevision | None, candidate: CandidateRevision | None, record: Record
) -> Record:
    """The record with a scale-down deadline for each revision that just lost all live traffic."""
    staying = {r.revision for r in (stable, candidate) if r is not None}
    former_stable = ctx.status.stable.revision if ctx.status.stable is not None else None
    deadlines = dict(record.state.scale_down_at)
    for share in ctx.status.traffic:
        name = share.revision
        if share.role == Role.FALLBACK or name in staying:
            continue
        when = scale_down_deadline(ctx.spec, ctx.now, former_stable=name == former_stable)
        if when is not None:
            deadlines[name] = max(when, deadlines.get(name, when))
    if deadlines == record.state.scale_down_at:
        return record
    return record.with_state(scale_down_at=deadlines)
