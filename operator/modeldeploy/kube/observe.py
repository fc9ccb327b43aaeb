"""Observing: what one ModelDeployment's children look like right now, read from the watch caches.

The planner never reads the cluster; it is handed an
:class:`~modeldeploy.plan.inputs.Observed` built here from the Store: each
revision's Deployment (replicas, readiness, progress deadline; its pod counts
from its ReplicaSet when that is fresher), the fallback
Deployment, which revision each Service selects, whether the route still
sends or mirrors traffic to the candidate Service, whether its parents
accepted the HTTPRoute, and each retrain Job's state. Reading costs no API call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from modeldeploy.kube.client import Kind
from modeldeploy.kube.store import Store, controlling_deployment
from modeldeploy.plan.acceptance import RouteStatus
from modeldeploy.plan.inputs import Observed, RevisionState, Subject
from modeldeploy.plan.outputs import ObjectRef
from modeldeploy.plan.revisions import LABEL_COMPONENT, LABEL_REVISION
from modeldeploy.plan.routes import ROUTE_KINDS
from modeldeploy.plan.workloads import candidate_service_name

CONTROLLER_REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
"""The deployment controller's count of a Deployment's templates: written by it, read by nobody here."""


def deployment_view(store: Store, namespace: str, name: str) -> tuple[Any, ...] | None:
    """What a reconcile reads of Deployment ``name`` and its ReplicaSets, as the cache holds them.

    Its metadata and spec (the Actor compares them with what it wants; a spec
    change bumps the generation) and its :class:`RevisionState`, the only part of
    its status, or of its ReplicaSets', that the planner reads. A watch event of
    the Deployment or of one of its ReplicaSets that leaves this as it was
    (the deployment controller copying its ReplicaSet's counts into the
    Deployment's status, a ReplicaSet's status catching up with its spec) would
    plan exactly what the last reconcile did, so it triggers none. None when the
    Deployment is not cached.
    """
    deployment = store.get("Deployment", namespace, name)
    if deployment is None:
        return None
    meta = {k: v for k, v in deployment["metadata"].items() if k != "resourceVersion"}
    annotations = meta.get("annotations") or {}
    meta["annotations"] = {k: v for k, v in annotations.items() if k != CONTROLLER_REVISION_ANNOTATION}
    state = RevisionState.from_deployment(deployment, store.replica_sets(namespace, name))
    return meta, deployment.get("spec"), state


EventOutcome = Literal["news", "echo", "stale", "unchanged", "deleted"]


def take_event(store: Store, kind: Kind, event_type: str | None, body: Mapping[str, Any]) -> EventOutcome:
    """Bring a watch event of a ModelDeployment, a child or a ReplicaSet into the cache; what it says.

    ``deleted`` and ``news`` call for a reconcile of the ModelDeployment concerned. ``echo``: the
    operator's own write, which the reconcile that made it planned from already.
    ``stale``: the cache holds a later version already (:meth:`Store.holds_newer`).
    ``unchanged``: a change to a Deployment or its ReplicaSet that leaves
    :func:`deployment_view` as it was (cached all the same).
    """
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    if event_type == "DELETED":
        store.remove(kind.kind, namespace, name)
        return "deleted"
    if store.echoes(kind.kind, namespace, name, meta.get("resourceVersion")):
        return "echo"
    if store.holds_newer(kind.kind, namespace, name, meta.get("resourceVersion")):
        return "stale"
    deployment = _deployment_of(kind, meta)
    # Compared only with an earlier version: one a list put into the cache already triggered nothing.
    known = event_type == "MODIFIED" and store.holds_older(
        kind.kind, namespace, name, meta.get("resourceVersion")
    )
    before = deployment_view(store, namespace, deployment) if deployment and known else None
    store.put({**body, "apiVersion": kind.api_version, "kind": kind.kind})
    if before is not None and deployment and deployment_view(store, namespace, deployment) == before:
        return "unchanged"
    return "news"


def _deployment_of(kind: Kind, meta: Mapping[str, Any]) -> str | None:
    """The Deployment whose view an event can change: itself, or a ReplicaSet's controller."""
    if kind.kind == "Deployment":
        return str(meta["name"])
    if kind.kind == "ReplicaSet":
        return controlling_deployment(meta)
    return None


def observe(store: Store, subject: Subject) -> Observed:
    children = store.children(subject.namespace, subject.name)

    def state(deployment: Mapping[str, Any]) -> RevisionState:
        return RevisionState.from_deployment(
            deployment, store.replica_sets(subject.namespace, deployment["metadata"]["name"])
        )

    revisions = {
        obj["metadata"]["name"]: state(obj)
        for obj in children
        if obj["kind"] == "Deployment" and obj["metadata"].get("labels", {}).get(LABEL_COMPONENT) == "model"
    }
    fallback = next(
        (
            state(obj)
            for obj in children
            if obj["kind"] == "Deployment"
            and obj["metadata"].get("labels", {}).get(LABEL_COMPONENT) == "fallback"
        ),
        None,
    )
    stable_service = store.get("Service", subject.namespace, subject.name)
    stable_revision = None
    if stable_service is not None:
        stable_revision = (stable_service.get("spec", {}).get("selector") or {}).get(LABEL_REVISION)
    refs = tuple(sorted((ObjectRef.of(obj) for obj in children), key=lambda r: (r.kind, r.name)))
    jobs = {obj["metadata"]["name"]: job_state(obj) for obj in children if obj["kind"] == "Job"}
    candidate_service = store.get("Service", subject.namespace, candidate_service_name(subject.name))
    route = next((o for o in children if o["kind"] in ROUTE_KINDS), None)
    return Observed(
        revisions=revisions,
        fallback=fallback,
        jobs=jobs,
        stable_service_revision=stable_revision,
        candidate_service_revision=_selected(candidate_service),
        candidate_routed=route is not None and routes_to(route, candidate_service_name(subject.name)),
        route=RouteStatus.from_route(route) if route is not None and route["kind"] == "HTTPRoute" else None,
        children=refs,
    )


def _selected(service: Mapping[str, Any] | None) -> str | None:
    if service is None:
        return None
    selected: str | None = (service.get("spec", {}).get("selector") or {}).get(LABEL_REVISION)
    return selected


def routes_to(route: Mapping[str, Any], service: str) -> bool:
    """Whether an HTTPRoute or VirtualService sends or mirrors any live traffic to a Service."""
    spec = route.get("spec") or {}
    if route["kind"] == "HTTPRoute":
        for rule in spec.get("rules") or []:
            if any(
                b.get("name") == service and b.get("weight", 1) > 0 for b in rule.get("backendRefs") or []
            ):
                return True
            for f in rule.get("filters") or []:
                mirror = (f.get("requestMirror") or {}).get("backendRef") or {}
                if mirror.get("name") == service:
                    return True
        return False
    for http in spec.get("http") or []:
        for destination in http.get("route") or []:
            if (destination.get("destination") or {}).get("host") == service and destination.get(
                "weight", 0
            ) > 0:
                return True
        if (http.get("mirror") or {}).get("host") == service:
            return True
    return False


def job_state(job: Mapping[str, Any]) -> str:
    """Running, Succeeded or Failed, from a Job's conditions (Complete / Failed)."""
    for condition in job.get("status", {}).get("conditions", []):
        if condition.get("status") == "True" and condition.get("type") == "Complete":
            return "Succeeded"
        if condition.get("status") == "True" and condition.get("type") == "Failed":
            return "Failed"
    return "Running"
