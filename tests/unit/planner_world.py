"""A tiny in-memory cluster for planner tests: it carries out Plans the way the act step would.

Readiness is under the test's control (``ready_cap``): a Deployment has as many
Ready replicas as it asks for, up to its cap, so tests decide when a revision
becomes ready, partly ready or never ready.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from modeldeploy.kube.observe import routes_to
from modeldeploy.plan.acceptance import RouteStatus
from modeldeploy.plan.inputs import Inputs, Observed, RevisionState, Subject
from modeldeploy.plan.outputs import FINALIZER, ObjectRef, Plan
from modeldeploy.plan.planner import plan

NAMESPACE = "risk"
NAME = "fraud"
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def spec(
    version: str = "1.0.0", replicas: int = 2, router: str = "gatewayAPI", **extra: Any
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "model": {"name": "fraud-detector", "version": version, "uri": f"s3://m/{version}"},
        "runtime": {"image": "ghcr.io/acme/server:1", "readinessPath": "/ready"},
        "replicas": replicas,
    }
    if router == "gatewayAPI":
        result["traffic"] = {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "public"}]}}
    elif router == "istio":
        result["traffic"] = {"router": "istio"}
    result.update(extra)
    return result


@dataclass
class World:
    spec: dict[str, Any]
    generation: int = 1
    status: dict[str, Any] = field(default_factory=dict)
    deployments: dict[str, int] = field(default_factory=dict)  # name -> spec.replicas
    ready_cap: dict[str, int] = field(default_factory=dict)  # name -> most replicas that can be Ready
    deadline: set[str] = field(default_factory=set)
    failures: dict[str, str] = field(default_factory=dict)  # name -> its ReplicaFailure message
    services: dict[str, str | None] = field(default_factory=dict)
    routes: set[str] = field(default_factory=set)
    route_objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    config_maps: set[str] = field(default_factory=set)
    jobs: dict[str, str] = field(default_factory=dict)  # name -> Running | Succeeded | Failed
    job_objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    autoscalers: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> HPA (min, max)
    autoscaler_objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    handed_over: set[str] = field(default_factory=set)  # Deployments whose count an HPA owns
    deleting: bool = False
    finalizers: tuple[str, ...] = (FINALIZER,)
    now: datetime = T0
    log: list[Plan] = field(default_factory=list)
    gateway: str | None = "accept"
    """What a gateway writes on the HTTPRoute for its current generation: "accept", "refuse",
    "lag" (Accepted for the generation before), or None (no gateway: no status at all)."""
    route_generation: int = 0
    route_created: datetime | None = None

    def subject(self) -> Subject:
        return Subject(
            name=NAME,
            namespace=NAMESPACE,
            uid="uid-1",
            generation=self.generation,
            spec=copy.deepcopy(self.spec),
            status=copy.deepcopy(self.status),
            deleting=self.deleting,
            finalizers=self.finalizers,
        )

    def ready(self, name: str) -> int:
        return min(self.deployments.get(name, 0), self.ready_cap.get(name, 0))

    def observed(self) -> Observed:
        revisions = {
            name: RevisionState(
                name=name,
                replicas=replicas,
                ready=self.ready(name),
                updated=replicas,
                available=self.ready(name),
                deadline_exceeded=name in self.deadline,
                failure=self.failures.get(name),
                scaled_by="autoscaler" if name in self.handed_over else None,
            )
            for name, replicas in self.deployments.items()
            if name != f"{NAME}-fallback"
        }
        fallback = None
        if f"{NAME}-fallback" in self.deployments:
            name = f"{NAME}-fallback"
            fallback = RevisionState(name=name, replicas=self.deployments[name], ready=self.ready(name))
        children = [ObjectRef("apps/v1", "Deployment", NAMESPACE, n) for n in self.deployments]
        children += [ObjectRef("v1", "Service", NAMESPACE, n) for n in self.services]
        children += [ObjectRef("x/v1", kind, NAMESPACE, NAME) for kind in self.routes]
        children += [ObjectRef("v1", "ConfigMap", NAMESPACE, n) for n in self.config_maps]
        children += [ObjectRef("batch/v1", "Job", NAMESPACE, n) for n in self.jobs]
        children += [
            ObjectRef("autoscaling/v2", "HorizontalPodAutoscaler", NAMESPACE, n) for n in self.autoscalers
        ]
        return Observed(
            revisions=revisions,
            fallback=fallback,
            jobs=dict(self.jobs),
            stable_service_revision=self.services.get(NAME),
            candidate_service_revision=self.services.get(f"{NAME}-candidate"),
            candidate_routed=any(routes_to(r, f"{NAME}-candidate") for r in self.route_objects.values()),
            route=self.route_status(),
            children=tuple(children),
        )

    def route_status(self) -> RouteStatus | None:
        """The HTTPRoute with the status the gateway (``self.gateway``) wrote for its generation."""
        route = self.route_objects.get("HTTPRoute")
        if route is None:
            return None
        generation = self.route_generation
        accepted = _condition("Accepted", "True", "Accepted", generation)
        conditions: list[dict[str, Any]] = []
        if self.gateway == "accept":
            conditions = [accepted, _condition("ResolvedRefs", "True", "ResolvedRefs", generation)]
        elif self.gateway == "refuse":
            refused = _condition("ResolvedRefs", "False", "BackendNotFound", generation)
            conditions = [accepted, {**refused, "message": "service fraud-candidate not found"}]
        elif self.gateway == "lag":
            conditions = [_condition("Accepted", "True", "Accepted", generation - 1)]
        parents = [
            {"parentRef": ref, "controllerName": "example.com/gateway", "conditions": conditions}
            for ref in route["spec"].get("parentRefs", [])
        ]
        created = (self.route_created or self.now).isoformat().replace("+00:00", "Z")
        body = {
            **route,
            "metadata": {**route["metadata"], "generation": generation, "creationTimestamp": created},
            "status": {"parents": parents if self.gateway is not None else []},
        }
        return RouteStatus.from_route(body)

    def edit(self, **changes: Any) -> None:
        self.spec = {**self.spec, **changes}
        self.generation += 1

    def reconcile(self, seconds: float = 1.0, inputs: Inputs | None = None) -> Plan:
        self.now += timedelta(seconds=seconds)
        decided = plan(self.subject(), self.observed(), self.now, inputs)
        self.carry_out(decided)
        return decided

    def crash_during(self, seconds: float, steps: int) -> None:
        """Plan, then die after ``steps`` of the plan's writes: no status write, no Events (a SIGKILL)."""
        self.now += timedelta(seconds=seconds)
        decided = plan(self.subject(), self.observed(), self.now)
        partial = Plan(
            apply=decided.apply[:steps],
            scale=decided.scale[: max(0, steps - len(decided.apply))],
            delete=decided.delete[: max(0, steps - len(decided.apply) - len(decided.scale))],
        )
        self.carry_out(partial)

    def carry_out(self, decided: Plan) -> None:
        existing = {name for name, _ in decided.hand_over if name in self.deployments}
        for name, replicas in decided.hand_over:
            if name in existing:
                self.deployments[name] = replicas
        for obj in decided.apply:
            kind, name = obj["kind"], obj["metadata"]["name"]
            if kind == "Deployment":
                annotations = obj["metadata"].get("annotations") or {}
                if annotations.get("modeldeploy.io/replicas-owner") == "autoscaler":
                    self.handed_over.add(name)
                else:
                    self.handed_over.discard(name)
                # Left out, the count stays what it is (the API server's default 1 for a new one).
                self.deployments[name] = obj["spec"].get("replicas", self.deployments.get(name, 1))
            elif kind == "HorizontalPodAutoscaler":
                self.autoscalers[name] = (obj["spec"]["minReplicas"], obj["spec"]["maxReplicas"])
                self.autoscaler_objects[name] = obj
            elif kind == "Service":
                self.services[name] = obj["spec"]["selector"].get("modeldeploy.io/revision")
            elif kind == "ConfigMap":
                self.config_maps.add(name)
            elif kind == "Job":
                self.jobs.setdefault(name, "Running")
                self.job_objects[name] = obj
            else:
                self.routes.add(kind)
                if kind not in self.route_objects:
                    self.route_created = self.now
                if self.route_objects.get(kind, {}).get("spec") != obj["spec"]:
                    self.route_generation += 1
                self.route_objects[kind] = obj
        for name, replicas in decided.hand_over:
            if name not in existing and name in self.deployments:
                self.deployments[name] = replicas
        for name, replicas in decided.scale:
            if name in self.deployments:
                self.deployments[name] = replicas
        for ref in decided.delete:
            if ref.kind == "Deployment":
                self.deployments.pop(ref.name, None)
            elif ref.kind == "Service":
                self.services.pop(ref.name, None)
            elif ref.kind == "ConfigMap":
                self.config_maps.discard(ref.name)
            elif ref.kind == "Job":
                self.jobs.pop(ref.name, None)
            elif ref.kind == "HorizontalPodAutoscaler":
                self.autoscalers.pop(ref.name, None)
                self.autoscaler_objects.pop(ref.name, None)
            else:
                self.routes.discard(ref.kind)
                self.route_objects.pop(ref.kind, None)
        if decided.finalizer is True and FINALIZER not in self.finalizers:
            self.finalizers = (*self.finalizers, FINALIZER)
        elif decided.finalizer is False:
            self.finalizers = tuple(f for f in self.finalizers if f != FINALIZER)
        if decided.status is not None:
            self.status = decided.status
        self.log.append(decided)

    def settle(self, rounds: int = 6, inputs: Inputs | None = None) -> Plan:
        decided = self.reconcile(inputs=inputs)
        for _ in range(rounds):
            decided = self.reconcile(inputs=inputs)
        return decided

    def autoscale(self, load: dict[str, int] | None = None) -> None:
        """Each HPA sets its Deployment's count, as its controller would: what the load asks for
        (``load``: name -> replicas), else the current count, kept within the HPA's bounds."""
        for name, (low, high) in self.autoscalers.items():
            if name in self.deployments and self.deployments[name] > 0:
                wanted = (load or {}).get(name, self.deployments[name])
                self.deployments[name] = min(max(wanted, low), high)

    def ready_all(self) -> None:
        """Every Deployment can have all the replicas it asks for Ready."""
        for name in self.deployments:
            self.ready_cap[name] = 100

    @property
    def candidate(self) -> dict[str, Any]:
        return dict(self.status.get("candidate") or {})

    def weights(self) -> dict[str, int]:
        return {t["role"]: t["weight"] for t in self.status.get("traffic", [])}

    def action(self, type_: str, **extra: Any) -> None:
        self.status = {**self.status, "action": {"type": type_, **extra}}


def _condition(kind: str, status: str, reason: str, generation: int) -> dict[str, Any]:
    """A route parent's condition as a gateway writes it for one generation."""
    return {"type": kind, "status": status, "reason": reason, "observedGeneration": generation}
