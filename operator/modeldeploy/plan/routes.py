"""Routers: the object that splits live traffic between the stable and candidate Services.

The planner decides a split (weights summing to 100, an optional mirror
percent to the candidate); each router renders it:

- ``gatewayAPI``: an HTTPRoute with weighted backendRefs and a RequestMirror filter;
- ``istio``: a VirtualService with weighted destinations, ``mirror`` and ``mirrorPercentage``;
- ``service``: no route object at all: the stable Service's selector is the
  switch, and canary weights are approximated by replica counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modeldeploy.api import ModelDeploymentSpec, Router
from modeldeploy.plan.workloads import SERVICE_PORT, Owner

HTTPROUTE = ("gateway.networking.k8s.io/v1", "HTTPRoute")
VIRTUALSERVICE = ("networking.istio.io/v1", "VirtualService")
ROUTE_KINDS = (HTTPROUTE[1], VIRTUALSERVICE[1])
"""The kinds of route object a router may render; at most one exists at a time."""


@dataclass(frozen=True)
class Backend:
    """One Service in a split, with its role and percent of live traffic."""

    role: str
    service: str
    weight: int


@dataclass(frozen=True)
class Split:
    """Where live traffic goes: weights sum to 100; mirror percent of it is copied to the candidate.

    Invariants (rule 2), checked on construction: the weights sum to 100 and
    the mirror percent is within 0..100.
    """

    backends: tuple[Backend, ...]
    mirror_service: str | None = None
    mirror_percent: int = 0

    def __post_init__(self) -> None:
        total = sum(b.weight for b in self.backends)
        if self.backends and total != 100:
            raise ValueError(f"weights sum to {total}, not 100: {self.backends}")
        if not 0 <= self.mirror_percent <= 100:
            raise ValueError(f"mirror percent {self.mirror_percent} outside 0..100")


def render_route(owner: Owner, spec: ModelDeploymentSpec, split: Split) -> dict[str, Any] | None:
    """The route object for the router in effect, or None for the service router."""
    if spec.router == Router.GATEWAY_API:
        return _httproute(owner, spec, split)
    if spec.router == Router.ISTIO:
        return _virtualservice(owner, spec, split)
    return None


def _httproute(owner: Owner, spec: ModelDeploymentSpec, split: Split) -> dict[str, Any]:
    settings = spec.traffic.gateway_api if spec.traffic else None
    rule: dict[str, Any] = {
        "backendRefs": [
            {"name": b.service, "port": SERVICE_PORT, "weight": b.weight}
            for b in split.backends
            if b.weight > 0 or b.role == "stable"
        ],
    }
    if split.mirror_service and split.mirror_percent > 0:
        rule["filters"] = [
            {
                "type": "RequestMirror",
                "requestMirror": {
                    "backendRef": {"name": split.mirror_service, "port": SERVICE_PORT},
                    "percent": split.mirror_percent,
                },
            }
        ]
    route_spec: dict[str, Any] = {"rules": [rule]}
    if settings is not None:
        route_spec["parentRefs"] = [ref.to_wire() for ref in settings.parent_refs]
        if settings.hostnames:
            route_spec["hostnames"] = list(settings.hostnames)
    api_version, kind = HTTPROUTE
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": owner.metadata(owner.name, "route"),
        "spec": route_spec,
    }


def _virtualservice(owner: Owner, spec: ModelDeploymentSpec, split: Split) -> dict[str, Any]:
    settings = spec.traffic.istio if spec.traffic else None
    http: dict[str, Any] = {
        "route": [
            {"destination": {"host": b.service, "port": {"number": SERVICE_PORT}}, "weight": b.weight}
            for b in split.backends
            if b.weight > 0 or b.role == "stable"
        ],
    }
    if split.mirror_service and split.mirror_percent > 0:
        http["mirror"] = {"host": split.mirror_service, "port": {"number": SERVICE_PORT}}
        http["mirrorPercentage"] = {"value": float(split.mirror_percent)}
    vs_spec: dict[str, Any] = {
        "hosts": list(settings.hosts) if settings and settings.hosts else [owner.stable_service],
        "http": [http],
    }
    if settings and settings.gateways:
        vs_spec["gateways"] = list(settings.gateways)
    api_version, kind = VIRTUALSERVICE
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": owner.metadata(owner.name, "route"),
        "spec": vs_spec,
    }
