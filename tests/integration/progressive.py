"""Helpers of the progressive-delivery scenarios (test_progressive.py on the operator pod,
test_progressive_host.py on the host-process operator)."""

from __future__ import annotations

from typing import Any

from kubetest import apply, fraud, get, wait_phase
from modeldeploy.api import parse_spec
from modeldeploy.plan.revisions import revision_name, revision_source

INTERVAL = 5  # seconds: the shortest analysis interval the API allows
ERROR_RATE = 'max(model_error_rate{namespace="{{namespace}}",revision="{{revision}}"})'
LATENCY = 'max(model_latency_seconds{namespace="{{namespace}}",revision="{{revision}}"})'


def manifest(version: str, router: str = "gatewayAPI", **spec: Any) -> dict[str, Any]:
    return fraud(version, router, **spec)


def revision(doc: dict[str, Any]) -> str:
    parsed = parse_spec(doc["spec"])
    return revision_name(doc["metadata"]["name"], revision_source(parsed.model, parsed.runtime))


def route_state(cluster: Any, namespace: str) -> tuple[tuple[tuple[str, int], ...], int] | None:
    route = get(cluster, namespace, "httproute", "fraud")
    if route is None:
        return None
    rule = route["spec"]["rules"][0]
    weights = tuple((b["name"], b.get("weight", 1)) for b in rule["backendRefs"])
    mirror = next((f["requestMirror"].get("percent", 100) for f in rule.get("filters", [])), 0)
    return weights, mirror


def error_rate_analysis(**extra: Any) -> dict[str, Any]:
    return {
        "interval": f"{INTERVAL}s",
        "metrics": [{"name": "error-rate", "query": ERROR_RATE, "max": 0.05}],
        **extra,
    }


def stable_v1(cluster: Any, namespace: str, **spec: Any) -> str:
    apply(cluster, namespace, manifest("1.0.0", **spec))
    return str(wait_phase(cluster, namespace, "fraud", "Stable")["stable"]["revision"])
