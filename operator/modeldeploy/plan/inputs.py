"""The planner's inputs, as plain frozen values: what is declared, what is observed, what was measured.

``Subject`` is the ModelDeployment as read; ``Observed`` is what its children
look like right now (from the operator's watch caches); ``Inputs`` is what the
reconciler measured this round (analysis, warm-up, fallback triggers,
monitoring, the retrain webhook's answer). Nothing here reads a clock or
talks to anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from modeldeploy.api import (
    MetricResult,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    RegistryCard,
    Verdict,
    WebhookOutcome,
    parse_spec,
    parse_status,
)
from modeldeploy.plan.acceptance import RouteStatus
from modeldeploy.plan.outputs import ObjectRef
from modeldeploy.plan.revisions import ANNOTATION_SCALED_BY, canonical_digest

FAILURE_LIMIT = 400
"""Characters kept of a ReplicaFailure message (a quota's message lists every resource it limits)."""


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
    resource_version: str = ""
    """The version the API server gave this body; empty for a body that did not come from it."""

    @cached_property
    def parsed_spec(self) -> ModelDeploymentSpec:
        """``spec`` parsed (raises InvalidManifestError), once per Subject: the measurer and the
        planner of one pass share it. Parsing was 4 % of the operator's CPU under load. Taken from
        :data:`PARSED` for a generation parsed before (see there)."""
        return PARSED.spec(self)

    @cached_property
    def parsed_status(self) -> ModelDeploymentStatus:
        """``status`` parsed (raises InvalidManifestError), once per Subject."""
        return parse_status(self.status)

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
            resource_version=str(meta.get("resourceVersion") or ""),
        )


class LastParsed:
    """The spec last parsed of each ModelDeployment, by the generation it was parsed for.

    Every pass of a reconcile parses its ModelDeployment's spec (2 % of the operator's CPU at
    N = 100, in a py-spy profile), and nearly all find the spec of the pass before: a spec
    changes a few times in a ModelDeployment's life, its status and its children all the time.
    The API server says when it is the same: a ModelDeployment's ``generation`` changes with
    every change of its spec (its CRD has a status subresource). So the spec parsed for a (uid,
    generation) is taken again as it is (parsed models are frozen), for bodies that came from
    the API server (they carry a resourceVersion), one per ModelDeployment, forgotten with it
    (:meth:`forget`). Safe from any thread: an entry is one tuple, replaced whole.

    The status is parsed each time: it changes with most writes, so a kept one would seldom
    be taken again, and it is three times the memory of a spec (12 kB parsed, for a canary's).
    """

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], tuple[tuple[str, int], ModelDeploymentSpec]] = {}

    def spec(self, subject: Subject) -> ModelDeploymentSpec:
        if not subject.resource_version:  # not from the API server: its generation says nothing
            return parse_spec(subject.spec)
        key, identity = (subject.namespace, subject.name), (subject.uid, subject.generation)
        last = self._last.get(key)
        if last is not None and last[0] == identity:
            return last[1]
        parsed = parse_spec(subject.spec)  # raises for an invalid one, which is not kept
        self._last[key] = (identity, parsed)
        return parsed

    def forget(self, namespace: str, name: str) -> None:
        self._last.pop((namespace, name), None)


PARSED = LastParsed()


@dataclass(frozen=True)
class RevisionState:
    """One revision's Deployment as observed.

    Invariant: ``ready``, ``updated`` and ``available`` count pods of the
    Deployment's current template only when ``current`` (the controller has
    seen its latest generation, or they are read from the ReplicaSet that holds
    that template); readiness is never read from a stale status.
    """

    name: str
    replicas: int
    ready: int = 0
    updated: int = 0
    available: int = 0
    current: bool = True
    deadline_exceeded: bool = False
    scaled_by: str | None = None
    """Who owns the replica count: ``autoscaler`` once handed to the revision's HPA (annotation)."""
    failure: str | None = None
    """Why pods of this revision cannot be created, if they cannot: the message of the Deployment's
    ReplicaFailure condition (a ResourceQuota or LimitRange, an admission policy refusing the pod)."""

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
    def from_deployment(
        cls, deployment: Mapping[str, Any], replica_sets: Sequence[Mapping[str, Any]] = ()
    ) -> RevisionState:
        """The revision's state from its Deployment, its pod counts from its ReplicaSet when fresher.

        The Deployment's status is a copy of its ReplicaSets' that the deployment
        controller writes after theirs, seconds after under load (6.7 s median at a
        hundred canaries at once, with kube-controller-manager's default client
        rate), and for a new Deployment often half a minute after: the controller's
        first status write (the revision annotation) and its second (observedGeneration)
        race, the second is refused (409) and waits its turn in the controller's
        rate-limited queue. When the Deployment's one ReplicaSet with pods holds its
        current template (:func:`current_replica_set`), ready, available and updated
        are read from it, and they count pods of the current template.
        """
        meta, spec, status = deployment["metadata"], deployment.get("spec", {}), deployment.get("status", {})
        conditions = {c.get("type"): c for c in status.get("conditions", [])}
        progressing = conditions.get("Progressing", {})
        replica_failure = conditions.get("ReplicaFailure", {})
        counts = status
        current = int(status.get("observedGeneration", 0)) >= int(meta.get("generation", 0))
        fresher = current_replica_set(deployment, replica_sets)
        if fresher is not None:
            rs = fresher.get("status") or {}
            counts = {
                "readyReplicas": rs.get("readyReplicas", 0),
                "availableReplicas": rs.get("availableReplicas", 0),
                "updatedReplicas": rs.get("replicas", 0),
            }
            current = True
        return cls(
            name=meta["name"],
            replicas=int(spec.get("replicas", 1)),
            ready=int(counts.get("readyReplicas", 0)),
            updated=int(counts.get("updatedReplicas", 0)),
            available=int(counts.get("availableReplicas", 0)),
            current=current,
            deadline_exceeded=progressing.get("status") == "False"
            and progressing.get("reason") == "ProgressDeadlineExceeded",
            scaled_by=(meta.get("annotations") or {}).get(ANNOTATION_SCALED_BY),
            failure=str(replica_failure.get("message") or "pods cannot be created")[:FAILURE_LIMIT]
            if replica_failure.get("status") == "True"
            else None,
        )


POD_TEMPLATE_HASH = "pod-template-hash"
"""The label the deployment controller adds to a ReplicaSet's copy of its Deployment's pod template."""
TEMPLATE_DIGEST = "templateDigest"
"""Where the operator's cache keeps a ReplicaSet's :func:`template_digest` instead of its template,
and a Deployment's beside its template."""


def template_digest(template: Mapping[str, Any] | None) -> str:
    """A digest of a pod template, the deployment controller's pod-template-hash label left out.

    Equal for a Deployment's template and for a ReplicaSet's copy of it: the deployment controller
    itself finds a Deployment's new ReplicaSet this way (``EqualIgnoreHash``: the templates equal
    once that label is dropped from the ReplicaSet's).
    """
    body = dict(template or {})
    meta = dict(body.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != POD_TEMPLATE_HASH}
    meta.pop("labels", None)
    if labels:
        meta["labels"] = labels
    body["metadata"] = meta
    return canonical_digest(body)


def _replica_set_digest(replica_set: Mapping[str, Any]) -> str | None:
    spec = replica_set.get("spec") or {}
    if isinstance(spec.get(TEMPLATE_DIGEST), str):
        return str(spec[TEMPLATE_DIGEST])
    return template_digest(spec["template"]) if isinstance(spec.get("template"), Mapping) else None


def current_replica_set(
    deployment: Mapping[str, Any], replica_sets: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The Deployment's ReplicaSet whose status can stand for the Deployment's, if one can.

    Only when nothing else could count: the ReplicaSet is controlled by this Deployment (uid),
    holds the Deployment's current pod template (:func:`template_digest`), and has seen its own
    latest generation, and every other ReplicaSet of the Deployment has no pod left. Otherwise
    None: the Deployment's own status is read. Whether the deployment controller has written its
    status for the Deployment's latest generation does not matter: the template says which pods
    the ReplicaSet's counts are of.
    """
    meta = deployment["metadata"]
    uid = meta.get("uid")
    if uid is None or not replica_sets:
        return None
    spec = deployment.get("spec") or {}
    if isinstance(spec.get(TEMPLATE_DIGEST), str):  # the cache's (kube.store), of this template
        wanted = str(spec[TEMPLATE_DIGEST])
    elif isinstance(spec.get("template"), Mapping):
        wanted = template_digest(spec["template"])
    else:
        return None
    current = None
    for rs in replica_sets:
        rs_meta, rs_status = rs["metadata"], rs.get("status") or {}
        references = rs_meta.get("ownerReferences") or ()
        if not any(ref.get("controller") and ref.get("uid") == uid for ref in references):
            continue
        if _replica_set_digest(rs) == wanted:
            current = rs
        elif int(rs_status.get("replicas", 0)) or int((rs.get("spec") or {}).get("replicas") or 0):
            return None  # pods of another template still count in the Deployment's status
    if current is None:
        return None
    current_status = current.get("status") or {}
    if int(current_status.get("observedGeneration", 0)) < int(current["metadata"].get("generation", 0)):
        return None
    return current


@dataclass(frozen=True)
class Observed:
    """The children of one ModelDeployment, as the operator's caches hold them.

    Invariants: ``revisions`` holds model Deployments only (never the
    fallback's); ``children`` holds every child found by label, the only list
    deletions are chosen from.
    """

    revisions: Mapping[str, RevisionState] = field(default_factory=dict)
    fallback: RevisionState | None = None
    """The fallback Deployment (modes Model and Response), if it exists."""
    jobs: Mapping[str, str] = field(default_factory=dict)
    """Retrain Jobs by name: Running, Succeeded or Failed."""
    stable_service_revision: str | None = None
    candidate_service_revision: str | None = None
    candidate_routed: bool = False
    """The observed route sends (or mirrors) live traffic to the candidate Service."""
    route: RouteStatus | None = None
    """The observed HTTPRoute's acceptance by its parents (None for a VirtualService or no route)."""
    children: tuple[ObjectRef, ...] = ()

    def has(self, kind: str) -> bool:
        return any(ref.kind == kind for ref in self.children)


@dataclass(frozen=True)
class WarmupOutcome:
    """The warm-up's result: passed within its latency and error bounds or not, and why."""

    passed: bool
    message: str


@dataclass(frozen=True)
class RegistryRead:
    """What the model registry said this round for spec.model.registry.

    ``version`` (with ``uri`` and ``card``) when it answered; else ``reason``
    (Unreachable, NotFound, ProviderRefused, ...) and ``error`` say why not.
    ``reported_until`` is set when history entries up to that time were
    written back; ``write_error`` when writing them failed.
    """

    version: str | None = None
    uri: str | None = None
    card: RegistryCard | None = None
    reason: str = "Resolved"
    error: str | None = None
    reported_until: datetime | None = None
    write_error: str | None = None


@dataclass(frozen=True)
class Inputs:
    """What the reconciler measured this round; the planner folds it into status.

    Invariant: a field is None when nothing was measured for it this round,
    never a stand-in value (Inconclusive is not success: rule 4).
    """

    analysis: tuple[MetricResult, ...] | None = None
    """status.analysis after this round's measurements (MetricResult), or after the rounds the
    measurer keeps unwritten (``analysis_unsaved``); None: nothing measured since status's record."""
    analysis_unsaved: bool = False
    """``analysis`` only repeats status's verdicts and counts, and status's record is recent: plan
    from ``analysis`` (the next round's due time), but status keeps its record (no write)."""
    verdict: Verdict | None = None
    """The analysis verdict over the current stage's results, when the candidate is in an analysed stage."""
    analysis_planned: datetime | None = None
    """The due time of the next round of analysis when the slow-I/O pool starts that round by itself
    (its end wakes the reconcile); None: a reconcile must start it."""
    warmup: WarmupOutcome | None = None
    monitoring: tuple[MetricResult, ...] | None = None
    """status.monitoring after this round's measurements of the stable revision; None: not measured now."""
    webhook: WebhookOutcome | None = None
    """The retrain webhook's answer, when it was called this round."""
    fallback_failing: bool | None = None
    """The fallback trigger metrics' verdict this round (True: failing); None: not measured now."""
    notification_targets: frozenset[str] | None = None
    """The notification targets the admin offers this namespace; None: notifications are not set up."""
    registry: RegistryRead | None = None
    """The model registry's answer this round (spec.model.registry); None: not asked now."""
    cloud_events: bool = False
    """Whether the admin's CloudEvents sink takes this namespace's notices (all events, no subscription)."""
