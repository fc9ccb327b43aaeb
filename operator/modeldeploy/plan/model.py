"""The planner's inputs and output, as plain frozen values.

``Subject`` is the ModelDeployment as read; ``Observed`` is what its children
look like right now (from the operator's watch caches); ``Plan`` is everything
the act step must do: objects to server-side apply, Deployments to scale,
objects to delete, the new status, Events, and the finalizer. Nothing here
reads a clock or talks to anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

FINALIZER = "modeldeploy.io/cleanup"


@dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectRef:
        meta = obj["metadata"]
        return cls(obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


@dataclass(frozen=True)
class Subject:
    """The ModelDeployment being planned, as the API server returned it."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    deleting: bool = False
    finalizers: tuple[str, ...] = ()

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Subject:
        meta = body.get("metadata", {})
        return cls(
            name=meta["name"],
            namespace=meta.get("namespace", ""),
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation", 0)),
            spec=body.get("spec") or {},
            status=body.get("status") or {},
            deleting=bool(meta.get("deletionTimestamp")),
            finalizers=tuple(meta.get("finalizers") or ()),
        )


@dataclass(frozen=True)
class RevisionState:
    """One revision's Deployment as observed."""

    name: str
    replicas: int
    ready: int = 0
    updated: int = 0
    available: int = 0
    current: bool = True
    deadline_exceeded: bool = False

    def serves(self, wanted: int) -> bool:
        """All wanted replicas of the current template are Ready."""
        return (
            self.current
            and self.replicas == wanted
            and self.ready >= wanted
            and self.updated >= wanted
            and wanted > 0
        )

    def ready_for(self, wanted: int) -> bool:
        """At least ``wanted`` replicas of the current template are Ready (more may be starting)."""
        return self.current and wanted > 0 and self.ready >= wanted and self.updated >= wanted

    @classmethod
    def from_deployment(cls, deployment: Mapping[str, Any]) -> RevisionState:
        meta, spec, status = deployment["metadata"], deployment.get("spec", {}), deployment.get("status", {})
        conditions = {c.get("type"): c for c in status.get("conditions", [])}
        progressing = conditions.get("Progressing", {})
        return cls(
            name=meta["name"],
            replicas=int(spec.get("replicas", 1)),
            ready=int(status.get("readyReplicas", 0)),
            updated=int(status.get("updatedReplicas", 0)),
            available=int(status.get("availableReplicas", 0)),
            current=int(status.get("observedGeneration", 0)) >= int(meta.get("generation", 0)),
            deadline_exceeded=progressing.get("status") == "False"
            and progressing.get("reason") == "ProgressDeadlineExceeded",
        )


@dataclass(frozen=True)
class Observed:
    """The children of one ModelDeployment, as the operator's caches hold them."""

    revisions: Mapping[str, RevisionState] = field(default_factory=dict)
    fallback: RevisionState | None = None
    """The fallback Deployment (modes Model and Response), if it exists."""
    jobs: Mapping[str, str] = field(default_factory=dict)
    """Retrain Jobs by name: Running, Succeeded or Failed."""
    stable_service_revision: str | None = None
    candidate_service_revision: str | None = None
    candidate_routed: bool = False
    """The observed route sends (or mirrors) live traffic to the candidate Service."""
    children: tuple[ObjectRef, ...] = ()

    def has(self, kind: str) -> bool:
        return any(ref.kind == kind for ref in self.children)


@dataclass(frozen=True)
class Judgement:
    """The analysis verdict over the current stage's results (computed by the analysis layer).

    kind: pending (not measured yet), pass (every metric's latest measurement
    succeeded), hold (inconclusive or failed below the limit), fail (a metric
    reached failureLimit), rollback (inconclusiveLimit reached with
    onInconclusive: Rollback).
    """

    kind: Literal["pending", "pass", "hold", "fail", "rollback"]
    reason: str
    message: str


@dataclass(frozen=True)
class WarmupOutcome:
    passed: bool
    message: str


@dataclass(frozen=True)
class WebhookOutcome:
    ok: bool
    message: str


@dataclass(frozen=True)
class Inputs:
    """What the reconciler measured this round; the planner folds it into status."""

    analysis: tuple[Any, ...] | None = None
    """status.analysis after this round's measurements (MetricResult); None: nothing measured now."""
    judgement: Judgement | None = None
    warmup: WarmupOutcome | None = None
    monitoring: tuple[Any, ...] | None = None
    """status.monitoring after this round's measurements of the stable revision; None: not measured now."""
    webhook: WebhookOutcome | None = None
    """The retrain webhook's answer, when it was called this round."""
    fallback_failing: bool | None = None
    """The fallback trigger metrics' verdict this round (True: failing); None: not measured now."""


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    """Everything one reconcile must do, in the order the act step does it.

    The finalizer is not here: kopf adds ``modeldeploy.io/cleanup`` and removes
    it once the deletion handler sees every child gone (see handlers).
    """

    apply: tuple[dict[str, Any], ...] = ()
    scale: tuple[tuple[str, int], ...] = ()
    delete: tuple[ObjectRef, ...] = ()
    status: dict[str, Any] | None = None
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None
