"""Sizing: how many replicas each live revision runs, fixed or within an autoscaler's bounds.

Without ``spec.autoscaling`` every revision has a fixed count the operator
writes into its Deployment (``spec.replicas``, a canary's share of it, the
fallback's own size). With it, each live revision gets a HorizontalPodAutoscaler
and the operator writes only the HPA's bounds; the Deployment's replica count
belongs to the HPA (the operator's server-side apply leaves the field out), so
the two never fight. The bounds follow the rollout:

- the stable revision (and a former stable kept warm): ``minReplicas`` ..
  ``maxReplicas`` as written;
- a candidate before promotion: its traffic share of the stable revision's
  *current* count (a canary at 30% of a stable scaled to 10 needs 3), never
  below 1 nor below what the step needs; it may grow to the same share of
  ``maxReplicas`` on its own load;
- a blue-green preview: the stable revision's current count;
- at promotion: at least the stable revision's current count, so a
  scaled-up service never drops to ``minReplicas`` at the switch (traffic
  moves only once that many are Ready);
- the revision backing a PreviousRevision fallback keeps its own fixed size.

A Deployment the HPA will own is handed over once: created (or converted from
a fixed size) with a separate field manager writing only the starting count,
so the operator's own apply never held the field and dropping it resets
nothing. A marker annotation says the hand-over happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from modeldeploy.api import ModelDeploymentSpec, Stage
from modeldeploy.plan.inputs import Observed, RevisionState
from modeldeploy.plan.positions import Position, candidate_replicas, scaled_replicas, traffic_share
from modeldeploy.plan.revisions import SCALED_BY_AUTOSCALER


@dataclass(frozen=True)
class Size:
    """One live revision's size.

    Invariants: with ``bounds`` (an HPA owns the count) ``1 <= low <= high`` and
    ``replicas`` is only the starting count, within the bounds; without, the
    operator keeps the Deployment at exactly ``replicas``.
    """

    replicas: int
    bounds: tuple[int, int] | None = None

    @property
    def autoscaled(self) -> bool:
        return self.bounds is not None


def autoscaled(spec: ModelDeploymentSpec) -> bool:
    return spec.autoscaling is not None


def starting_size(spec: ModelDeploymentSpec) -> int:
    """``spec.replicas`` within the autoscaler's bounds (or as written without one)."""
    scaling = spec.autoscaling
    if scaling is None:
        return spec.replicas
    return min(max(spec.replicas, scaling.min_replicas), scaling.max_replicas)


def current_size(spec: ModelDeploymentSpec, observed: Observed, revision: str | None) -> int:
    """A revision's replica count as its Deployment says now; the starting size before it exists."""
    state = observed.revisions.get(revision) if revision else None
    if state is None or state.replicas < 1:
        return starting_size(spec)
    return state.replicas


def candidate_bounds(spec: ModelDeploymentSpec, position: Position, stable_now: int) -> tuple[int, int]:
    """The candidate's HPA bounds at a position, from the stable revision's current count."""
    scaling = spec.autoscaling
    assert scaling is not None
    if position.stage == Stage.PROMOTING:
        low = max(scaling.min_replicas, stable_now)
    else:
        low = scaled_replicas(spec, position, stable_now)
    low = min(low, scaling.max_replicas)
    share = traffic_share(spec, position)
    high = max(low, min(scaling.max_replicas, -(-scaling.max_replicas * share // 100)))
    return low, high


def needed_for(spec: ModelDeploymentSpec, position: Position, stable_now: int) -> int:
    """Ready candidate replicas a position needs before it takes its traffic (autoscaled)."""
    scaling = spec.autoscaling
    assert scaling is not None
    if position.stage == Stage.PROMOTING:
        return min(max(scaling.min_replicas, stable_now), scaling.max_replicas)
    return min(candidate_replicas(spec, position, stable_now), scaling.max_replicas)


def stable_bounds(spec: ModelDeploymentSpec) -> tuple[int, int]:
    scaling = spec.autoscaling
    assert scaling is not None
    return scaling.min_replicas, scaling.max_replicas


def handed_over(state: RevisionState | None) -> bool:
    """The Deployment exists and its replica count already belongs to its HPA."""
    return state is not None and state.scaled_by == SCALED_BY_AUTOSCALER


def serving_ready(spec: ModelDeploymentSpec, state: RevisionState | None) -> bool:
    """The stable revision serves: all its replicas Ready, or with an HPA at least ``minReplicas``.

    With an HPA the count moves under load; Ready must not flap (nor status be
    written) each time the HPA scales. A scale bumps the Deployment's generation
    without changing its pod template (a revision's template is fixed by its
    hash), so the moment before the controller observes it is no reason to
    doubt the Ready pods.
    """
    if state is None:
        return False
    if spec.autoscaling is None:
        return state.serves(spec.replicas)
    least = spec.autoscaling.min_replicas
    return state.ready >= least and state.updated >= least
