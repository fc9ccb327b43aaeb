"""What the operator's route says, as data the local proxy can act on: pure, no I/O.

An HTTPRoute rule lists backendRefs (Services with weights) and may carry a
RequestMirror filter (a Service and a percent). Services select a revision by
label. The proxy picks a Service by weight, maps it to the revision its
selector names, and copies a share of requests to the mirror's revision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

REVISION_LABEL = "modeldeploy.io/revision"


@dataclass(frozen=True)
class Route:
    backends: tuple[tuple[str, int], ...] = ()
    mirror: str | None = None
    mirror_percent: int = 0
    revisions: Mapping[str, str] = field(default_factory=dict)  # Service name -> revision it selects

    def revision_of(self, service: str) -> str | None:
        return self.revisions.get(service)


def parse_route(httproute: Mapping[str, Any] | None) -> tuple[tuple[tuple[str, int], ...], str | None, int]:
    """Backends with weights, the mirror Service and its percent, from an HTTPRoute's first rule."""
    if not httproute:
        return (), None, 0
    rules = httproute.get("spec", {}).get("rules") or [{}]
    rule = rules[0]
    backends = tuple((str(b["name"]), int(b.get("weight", 1))) for b in rule.get("backendRefs") or [])
    for f in rule.get("filters") or []:
        if f.get("type") == "RequestMirror" and "requestMirror" in f:
            mirror = f["requestMirror"]
            percent = int(mirror.get("percent", 100))
            return backends, str(mirror["backendRef"]["name"]), percent
    return backends, None, 0


def service_revisions(services: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Service name -> the revision its selector names (Services that select none are left out)."""
    found: dict[str, str] = {}
    for service in services:
        selector = service.get("spec", {}).get("selector") or {}
        if REVISION_LABEL in selector:
            found[str(service["metadata"]["name"])] = str(selector[REVISION_LABEL])
    return found


def choose(backends: Sequence[tuple[str, int]], draw: float) -> str | None:
    """The backend a draw in [0, 1) lands on, each taking a share of [0, 1) proportional to its weight."""
    total = sum(max(0, weight) for _, weight in backends)
    if total <= 0:
        return None
    point = draw * total
    for name, weight in backends:
        if point < max(0, weight):
            return name
        point -= max(0, weight)
    return backends[-1][0]


def mirrored(percent: int, draw: float) -> bool:
    """Whether a request with this draw in [0, 1) is copied to the mirror."""
    return draw * 100 < percent
