"""Cleanup: which revisions are kept, which Deployments scale to zero, which objects are deleted.

- *live* revisions run: the stable and candidate revisions, former stable
  revisions inside blue-green's scale-down delay, and the earlier revision
  that backs a PreviousRevision fallback;
- *kept* revisions are the live ones plus those named in the (trimmed)
  history: their sources stay in ``status.operatorState.revisions`` so an undo
  can bring them back, and their Deployments stay, scaled to zero;
- the rest are deleted.

Nothing is scaled down or deleted before the stable Service is seen selecting
the stable revision (rule 3: the stable revision has taken all traffic first),
nor while the gateway has not accepted the HTTPRoute
(:mod:`~modeldeploy.plan.acceptance`). A revision no longer live loses its
HorizontalPodAutoscaler at once (it stays at the size it had until the
scale-down above). A route of the other router's kind, a fallback object no
longer wanted and a retrain Job other than the current one are deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modeldeploy.api import HistoryEntry
from modeldeploy.plan.decision import Context, Decision
from modeldeploy.plan.outputs import ObjectRef
from modeldeploy.plan.routes import ROUTE_KINDS

AUTOSCALER = "HorizontalPodAutoscaler"


@dataclass(frozen=True)
class Keep:
    """The revisions that run (``live``) and those whose record is kept (``kept``, a superset)."""

    live: frozenset[str]
    kept: frozenset[str]


@dataclass(frozen=True)
class Cleanup:
    """Deployments to scale to zero and objects to delete.

    Invariant (rule 3): empty of revisions unless the stable Service was
    observed selecting the stable revision; never the stable revision itself.
    """

    scale: tuple[tuple[str, int], ...]
    delete: tuple[ObjectRef, ...]


def keep(decision: Decision, warm: Mapping[str, datetime], history: Iterable[HistoryEntry]) -> Keep:
    live = {r.revision for r in (decision.stable, decision.candidate) if r is not None} | set(warm)
    if decision.fallback.previous_revision is not None:
        live.add(decision.fallback.previous_revision)
    return Keep(frozenset(live), frozenset(live | {h.revision for h in history}))


def clean_up(ctx: Context, decision: Decision, apply: Iterable[dict[str, Any]], keeping: Keep) -> Cleanup:
    observed = ctx.observed
    applied = list(apply)
    current_route = next((o["kind"] for o in applied if o["kind"] in ROUTE_KINDS), None)
    deletions = [r for r in observed.children if r.kind in ROUTE_KINDS and r.kind != current_route]
    desired = {(o["kind"], o["metadata"]["name"]) for o in applied}
    fallback = ctx.owner.fallback_service
    deletions += [r for r in observed.children if r.name == fallback and (r.kind, r.name) not in desired]
    retrain = decision.monitoring.retrain
    current_job = retrain.job if retrain else None
    deletions += [r for r in observed.children if r.kind == "Job" and r.name != current_job]
    deletions += [r for r in observed.children if r.kind == AUTOSCALER and (r.kind, r.name) not in desired]
    scale: list[tuple[str, int]] = []
    stable = decision.stable
    switched = stable is not None and observed.stable_service_revision == stable.revision
    if decision.route is not None and decision.route.holds:
        switched = False  # the gateway may still serve an older split: retire nothing behind it
    for name, state in sorted(observed.revisions.items()):
        if name in keeping.live:
            continue
        if name not in keeping.kept:
            if switched:
                deletions.append(ObjectRef("apps/v1", "Deployment", ctx.subject.namespace, name))
        elif switched and state.replicas != 0:
            scale.append((name, 0))
    return Cleanup(tuple(scale), tuple(deletions))
