"""The operator's Prometheus metrics about the ModelDeployments it manages.

Every value is derived from the status a reconcile just decided (and its
Events), so the metrics can never disagree with what ``kubectl get`` shows.
Label sets are bounded: namespace/name per object, a fixed set of phases,
roles and verdicts, and the metric names the spec declares. When an object is
deleted its series are removed.

The names and labels are the contract of the dashboard shipped in the chart
(``charts/modeldeploy/dashboards/metrics.yaml``); a test checks they agree.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge

from modeldeploy.api import MeasurementPhase, Phase, Role
from modeldeploy.plan.inputs import Observed
from modeldeploy.plan.outputs import Plan

PHASE = Gauge(
    "modeldeploy_phase",
    "1 for the current phase of each ModelDeployment, 0 for the others.",
    ["namespace", "name", "phase"],
)
TRAFFIC_WEIGHT = Gauge(
    "modeldeploy_traffic_weight",
    "Percent of live traffic per role (stable, candidate, fallback), as applied to the router.",
    ["namespace", "name", "role"],
)
ANALYSIS_VALUE = Gauge(
    "modeldeploy_analysis_value",
    "Latest measured value of each analysis metric.",
    ["namespace", "name", "metric"],
)
ANALYSIS_VERDICT = Gauge(
    "modeldeploy_analysis_verdict",
    "1 for the latest verdict of each analysis metric, 0 for the others.",
    ["namespace", "name", "metric", "verdict"],
)
PROMOTIONS = Counter(
    "modeldeploy_promotions",
    "Candidates promoted to stable.",
    ["namespace", "name"],
)
ROLLBACKS = Counter(
    "modeldeploy_rollbacks",
    "Candidates rolled back, by reason.",
    ["namespace", "name", "reason"],
)
FALLBACK_ACTIVE = Gauge(
    "modeldeploy_fallback_active",
    "1 while the fallback serves the ModelDeployment.",
    ["namespace", "name"],
)

MONITORING_VALUE = Gauge(
    "modeldeploy_monitoring_value",
    "Latest value of each monitoring metric, measured on the stable revision after promotion.",
    ["namespace", "name", "metric"],
)
DECAY = Gauge(
    "modeldeploy_decay_detected",
    "1 while condition DriftDetected (kind drift) or ModelDegraded (kind performance) is true.",
    ["namespace", "name", "kind"],
)
RETRAINS = Counter(
    "modeldeploy_retrains",
    "Retrainings started, succeeded and failed.",
    ["namespace", "name", "event"],
)
REVISION_REPLICAS = Gauge(
    "modeldeploy_revision_replicas",
    "Replicas of the revision in each role (stable, candidate, fallback): its Deployment's count, "
    "which an HPA sets under spec.autoscaling.",
    ["namespace", "name", "role"],
)
REVISION_READY_REPLICAS = Gauge(
    "modeldeploy_revision_ready_replicas",
    "Ready replicas of the revision in each role (stable, candidate, fallback).",
    ["namespace", "name", "role"],
)
RETRAIN_EVENTS = {"RetrainStarted": "started", "RetrainSucceeded": "succeeded", "RetrainFailed": "failed"}

_lock = threading.Lock()
_metric_names: dict[tuple[str, str], set[str]] = {}


def export(namespace: str, name: str, plan: Plan, observed: Observed | None = None) -> None:
    """Update the gauges from a plan's status and count its promotions and rollbacks.

    ``observed`` (the children the plan was made from) gives each role's replica counts.
    """
    for event in plan.events:
        if event.reason == "Promoted":
            PROMOTIONS.labels(namespace, name).inc()
        elif event.reason in ("RolledBack", "Aborted"):
            ROLLBACKS.labels(namespace, name, _rollback_reason(plan.status, event.reason)).inc()
        elif event.reason in RETRAIN_EVENTS:
            RETRAINS.labels(namespace, name, RETRAIN_EVENTS[event.reason]).inc()
    status = plan.status
    if status is None:
        return
    current = status.get("phase")
    for phase in Phase:
        PHASE.labels(namespace, name, phase.value).set(1 if phase.value == current else 0)
    weights = {share["role"]: share["weight"] for share in status.get("traffic", [])}
    for role in Role:
        TRAFFIC_WEIGHT.labels(namespace, name, role.value).set(weights.get(role.value, 0))
    FALLBACK_ACTIVE.labels(namespace, name).set(1 if weights.get(Role.FALLBACK.value) else 0)
    if observed is not None:
        _export_replicas(namespace, name, status, observed)
    conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
    DECAY.labels(namespace, name, "drift").set(1 if conditions.get("DriftDetected") == "True" else 0)
    DECAY.labels(namespace, name, "performance").set(1 if conditions.get("ModelDegraded") == "True" else 0)
    for result in status.get("monitoring", []):
        if result.get("value") is not None:
            MONITORING_VALUE.labels(namespace, name, result["metric"]).set(result["value"])
    seen: set[str] = set()
    for result in status.get("analysis", []):
        metric = result["metric"]
        seen.add(metric)
        if result.get("value") is not None:
            ANALYSIS_VALUE.labels(namespace, name, metric).set(result["value"])
        for verdict in MeasurementPhase:
            ANALYSIS_VERDICT.labels(namespace, name, metric, verdict.value).set(
                1 if verdict.value == result.get("phase") else 0
            )
    with _lock:
        stale = _metric_names.get((namespace, name), set()) - seen
        _metric_names[(namespace, name)] = seen
    for metric in stale:
        _remove_metric(namespace, name, metric)


def _export_replicas(namespace: str, name: str, status: Mapping[str, Any], observed: Observed) -> None:
    revisions = {
        Role.STABLE: (status.get("stable") or {}).get("revision"),
        Role.CANDIDATE: (status.get("candidate") or {}).get("revision"),
    }
    states = {
        role: observed.revisions.get(revision) if revision else None for role, revision in revisions.items()
    }
    states[Role.FALLBACK] = observed.fallback
    for role, state in states.items():
        REVISION_REPLICAS.labels(namespace, name, role.value).set(state.replicas if state else 0)
        REVISION_READY_REPLICAS.labels(namespace, name, role.value).set(state.ready if state else 0)


def forget(namespace: str, name: str) -> None:
    """Remove every series of a deleted ModelDeployment."""
    for phase in Phase:
        _quietly(PHASE.remove, namespace, name, phase.value)
    for role in Role:
        _quietly(TRAFFIC_WEIGHT.remove, namespace, name, role.value)
        _quietly(REVISION_REPLICAS.remove, namespace, name, role.value)
        _quietly(REVISION_READY_REPLICAS.remove, namespace, name, role.value)
    _quietly(FALLBACK_ACTIVE.remove, namespace, name)
    for kind in ("drift", "performance"):
        _quietly(DECAY.remove, namespace, name, kind)
    with _lock:
        metrics = _metric_names.pop((namespace, name), set())
    for metric in metrics:
        _remove_metric(namespace, name, metric)


def _remove_metric(namespace: str, name: str, metric: str) -> None:
    _quietly(ANALYSIS_VALUE.remove, namespace, name, metric)
    for verdict in MeasurementPhase:
        _quietly(ANALYSIS_VERDICT.remove, namespace, name, metric, verdict.value)


def _quietly(remove: Any, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        remove(*labels)


def _rollback_reason(status: Mapping[str, Any] | None, fallback: str) -> str:
    history = (status or {}).get("history") or []
    return str(history[-1]["reason"]) if history else fallback
