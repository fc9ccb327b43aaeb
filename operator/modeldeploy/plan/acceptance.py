"""Route acceptance: whether the gateway took the HTTPRoute the operator wrote, and whether traffic may move.

Gateway API controllers report on a route in ``status.parents[]``: one entry
per parent (Gateway) and controller, with the conditions ``Accepted`` and
``ResolvedRefs`` and the ``observedGeneration`` they speak for. A route the
gateway refuses keeps serving whatever the gateway last accepted, or nothing,
so moving traffic in the operator's books would be a lie and retiring the
revision behind the old configuration would drop requests. The rules:

- **Accepted**: every parentRef of the route has an entry whose ``Accepted``
  and ``ResolvedRefs`` are True for the route's current generation (an absent
  ``ResolvedRefs`` counts as True). Traffic moves.
- **Refused**: some parent's entry has ``Accepted`` or ``ResolvedRefs`` False
  for the current generation. Traffic holds: no canary step is entered, no
  promotion, blue-green switch or undo, and no revision is scaled down or
  deleted; a rollback, an abort and a fallback failover still happen (they
  move traffic back to safety). Condition ``RouteAccepted`` False names the
  route, the parent, the gateway's reason and message, and what to do; a
  Warning Event ``RouteRefused`` is sent when it starts.
- **Pending**: a gateway has written status for the route, but some parent
  has no entry, or one for an older generation, or ``Accepted`` is not yet
  True. Traffic holds as for Refused until the gateway catches up
  (``RouteAccepted`` False, reason ``RouteNotYetAccepted``).
- **No gateway status**: no gateway has written any ``status.parents`` entry.
  Traffic holds for ``spec.traffic.gatewayAPI.acceptanceWait`` (30s by
  default) after the route's creation, then moves unconfirmed, with
  ``RouteAccepted`` Unknown (reason ``NoGatewayStatus``) and one Warning
  Event. This is a cluster where no gateway controller watches the route's
  parent (or it lacks status RBAC); the condition says so.

Istio's VirtualService has no such status and the service router has no
route: for them there is nothing to wait for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from modeldeploy.api import ModelDeploymentSpec, parse_duration

GATEWAY_GROUP = "gateway.networking.k8s.io"
MESSAGE_LIMIT = 512


class Acceptance(StrEnum):
    ACCEPTED = "Accepted"
    REFUSED = "Refused"
    PENDING = "Pending"
    NO_STATUS = "NoStatus"


@dataclass(frozen=True)
class ParentState:
    """One parentRef of the route, as the gateway reported on it (or did not)."""

    parent: str
    """``namespace/name`` of the parent, with ``/section`` or ``:port`` when the ref names a listener."""
    acceptance: Acceptance
    controller: str = ""
    condition: str = ""
    """The condition that is not True: Accepted or ResolvedRefs."""
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class RouteStatus:
    """The HTTPRoute as observed: its generation, creation time, and each parent's acceptance.

    Invariant: ``parents`` has one entry per parentRef of the route's spec, in spec order.
    """

    name: str
    generation: int
    created: datetime | None
    parents: tuple[ParentState, ...]
    written: bool
    """Some controller has written some ``status.parents`` entry on the route."""

    @classmethod
    def from_route(cls, route: Mapping[str, Any]) -> RouteStatus:
        meta = route.get("metadata") or {}
        namespace = meta.get("namespace", "")
        generation = int(meta.get("generation") or 0)
        entries = (route.get("status") or {}).get("parents") or []
        parents = tuple(
            _parent_state(ref, namespace, generation, entries)
            for ref in (route.get("spec") or {}).get("parentRefs") or []
        )
        return cls(
            name=meta.get("name", ""),
            generation=generation,
            created=_time(meta.get("creationTimestamp")),
            parents=parents,
            written=bool(entries),
        )


@dataclass(frozen=True)
class RouteVerdict:
    """Whether traffic may move this round, and the words for the condition and Event.

    Invariant: ``holds`` is True exactly for Refused, Pending, and NoStatus
    inside the acceptance wait.
    """

    acceptance: Acceptance
    holds: bool
    route: str = ""
    reason: str = "RouteAccepted"
    message: str = ""
    wait_ends: datetime | None = None
    """When a route no gateway answered for stops holding traffic (NoStatus inside the wait)."""


def route_verdict(route: RouteStatus | None, spec: ModelDeploymentSpec, now: datetime) -> RouteVerdict | None:
    """The verdict on the observed HTTPRoute; None when there is none to wait for (no HTTPRoute)."""
    if route is None:
        return None
    name = f"HTTPRoute {route.name}"
    refused = next((p for p in route.parents if p.acceptance == Acceptance.REFUSED), None)
    if refused is not None:
        by = f" (controller {refused.controller})" if refused.controller else ""
        message = (
            f"{name} is refused by parent {refused.parent}{by}: {refused.condition} False, "
            f"reason {refused.reason}: {refused.message}. Traffic stays where it is and no revision is "
            "retired until the gateway accepts the route: fix the parentRef, the listener's allowedRoutes, "
            "or the backend the reason names (kubectl describe httproute, kubectl describe gateway)"
        )
        return RouteVerdict(Acceptance.REFUSED, True, route.name, "RouteRefused", message)
    pending = next((p for p in route.parents if p.acceptance == Acceptance.PENDING), None)
    if pending is not None and route.written:
        message = (
            f"{name} generation {route.generation} is not yet accepted by parent {pending.parent}"
            f"{': ' + pending.message if pending.message else ''}. Traffic waits for the gateway; if this "
            "lasts, check that the gateway controller for that parent is running"
        )
        return RouteVerdict(Acceptance.PENDING, True, route.name, "RouteNotYetAccepted", message)
    if pending is not None or not route.parents:
        settings = spec.traffic.gateway_api if spec.traffic else None
        wait = parse_duration(settings.acceptance_wait if settings is not None else "30s")
        ends = route.created + timedelta(seconds=wait) if route.created is not None else None
        waiting = ends is not None and now < ends
        message = f"no gateway has written status on {name}" + (
            f"; traffic waits up to {int(wait)}s after its creation for a first status"
            if waiting
            else "; traffic moves without the gateway's confirmation. Check that a Gateway API "
            "controller serves its parentRefs and may write HTTPRoute status"
        )
        return RouteVerdict(
            Acceptance.NO_STATUS, waiting, route.name, "NoGatewayStatus", message, ends if waiting else None
        )
    return RouteVerdict(
        Acceptance.ACCEPTED, False, route.name, "RouteAccepted", f"{name} is accepted by every parent"
    )


def _parent_key(ref: Mapping[str, Any], namespace: str) -> tuple[str, str, str, str, str, int]:
    return (
        ref.get("group") or GATEWAY_GROUP,
        ref.get("kind") or "Gateway",
        ref.get("namespace") or namespace,
        str(ref.get("name", "")),
        ref.get("sectionName") or "",
        int(ref.get("port") or 0),
    )


def _parent_state(
    ref: Mapping[str, Any], namespace: str, generation: int, entries: list[Mapping[str, Any]]
) -> ParentState:
    key = _parent_key(ref, namespace)
    parent = f"{key[2]}/{key[3]}" + (f"/{key[4]}" if key[4] else "") + (f":{key[5]}" if key[5] else "")
    mine = [e for e in entries if _parent_key(e.get("parentRef") or {}, namespace) == key]
    for entry in mine:
        conditions = {c.get("type"): c for c in entry.get("conditions") or []}
        for type_ in ("Accepted", "ResolvedRefs"):
            condition = conditions.get(type_)
            if condition is None or condition.get("status") != "False":
                continue
            if int(condition.get("observedGeneration") or 0) != generation:
                continue  # a refusal of an older generation says nothing about this one
            return ParentState(
                parent,
                Acceptance.REFUSED,
                str(entry.get("controllerName", "")),
                type_,
                str(condition.get("reason", ""))[:MESSAGE_LIMIT],
                str(condition.get("message", ""))[:MESSAGE_LIMIT],
            )
    pending = ParentState(parent, Acceptance.PENDING)
    for entry in mine:
        controller = str(entry.get("controllerName", ""))
        conditions = {c.get("type"): c for c in entry.get("conditions") or []}
        accepted = conditions.get("Accepted") or {}
        resolved = conditions.get("ResolvedRefs")
        if (
            accepted.get("status") == "True"
            and int(accepted.get("observedGeneration") or 0) >= generation
            and (resolved is None or resolved.get("status") == "True")
        ):
            return ParentState(parent, Acceptance.ACCEPTED, controller)
        pending = ParentState(parent, Acceptance.PENDING, controller, "Accepted")
    return pending


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
