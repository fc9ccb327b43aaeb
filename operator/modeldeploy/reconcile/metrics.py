"""The operator's Prometheus metrics about the ModelDeployments it manages.

Every value is derived from the status a reconcile just decided (and its
Events), so the metrics can never disagree with what ``kubectl get`` shows.
Label sets are bounded: namespace/name per object, a fixed set of phases,
roles and verdicts, and the metric names the spec declares. When an object is
deleted its series are removed.

The gauges are not prometheus_client Gauges: a labelled Gauge keeps an object
with a lock of its own per series (0.8 kB), and a canary has about thirty
series (eight phases, three roles in three gauges, four verdicts per analysis
metric...): 24 MB at a thousand ModelDeployments, a tenth of the operator's
memory. Instead :func:`export` keeps one small record per ModelDeployment of
what its last status said, and :class:`StatusCollector` writes the series from
the records when Prometheus scrapes: the same names, help, labels and values.
The counters stay Counters (they add up, and are written only on events); each
ModelDeployment's are remembered, so that its deletion removes them too.

The names and labels are the contract of the dashboard shipped in the chart
(``charts/modeldeploy/dashboards/metrics.yaml``); a test checks they agree.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from modeldeploy.api import MeasurementPhase, Phase, Role
from modeldeploy.plan.inputs import Observed
from modeldeploy.plan.outputs import Plan

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
RETRAINS = Counter(
    "modeldeploy_retrains",
    "Retrainings started, succeeded and failed.",
    ["namespace", "name", "event"],
)
RETRAIN_EVENTS = {"RetrainStarted": "started", "RetrainSucceeded": "succeeded", "RetrainFailed": "failed"}

PHASES = tuple(phase.value for phase in Phase)
ROLES = tuple(role.value for role in Role)
VERDICTS = tuple(verdict.value for verdict in MeasurementPhase)
DECAY_KINDS = ("drift", "performance")
_FALLBACK = ROLES.index(Role.FALLBACK)  # the fallback's place in a record's weights


@dataclass(frozen=True, slots=True)
class Record:
    """What one ModelDeployment's last status (and the children it was planned from) said."""

    phase: str | None
    weights: tuple[float, ...]
    """Per role, in ROLES' order."""
    decay: tuple[int, ...]
    """1 or 0 per kind, in DECAY_KINDS' order."""
    replicas: tuple[int, ...] | None = None
    """Per role; None until a reconcile has observed the children."""
    ready: tuple[int, ...] | None = None
    monitoring: tuple[tuple[str, float], ...] = ()
    """The latest value of each monitoring metric that has had one."""
    analysis: tuple[tuple[str, float | None, str | None], ...] = ()
    """(metric, latest value it had, latest verdict) for each metric in status.analysis."""


_lock = threading.Lock()
_records: dict[tuple[str, str], Record] = {}
_counted: dict[tuple[str, str], set[tuple[Counter, tuple[str, ...]]]] = {}
"""The counter series each ModelDeployment has, so that its deletion removes them too."""


def _count(counter: Counter, namespace: str, name: str, *labels: str) -> None:
    counter.labels(namespace, name, *labels).inc()
    with _lock:
        _counted.setdefault((namespace, name), set()).add((counter, (namespace, name, *labels)))


def export(namespace: str, name: str, plan: Plan, observed: Observed | None = None) -> None:
    """Count a plan's promotions and rollbacks, and keep what its status says for the gauges.

    ``observed`` (the children the plan was made from) gives each role's replica counts.
    """
    for event in plan.events:
        if event.reason == "Promoted":
            _count(PROMOTIONS, namespace, name)
        elif event.reason in ("RolledBack", "Aborted"):
            _count(ROLLBACKS, namespace, name, _rollback_reason(plan.status, event.reason))
        elif event.reason in RETRAIN_EVENTS:
            _count(RETRAINS, namespace, name, RETRAIN_EVENTS[event.reason])
    status = plan.status
    if status is None:
        return
    key = (namespace, name)
    last = _records.get(key)
    weights = {share["role"]: share["weight"] for share in status.get("traffic", [])}
    conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
    replicas, ready = (last.replicas, last.ready) if last is not None else (None, None)
    if observed is not None:
        replicas, ready = _replicas(status, observed)
    monitoring = dict(last.monitoring) if last is not None else {}
    for result in status.get("monitoring", []):
        if result.get("value") is not None:
            monitoring[result["metric"]] = result["value"]
    values = {metric: value for metric, value, _ in last.analysis} if last is not None else {}
    analysis = []
    for result in status.get("analysis", []):
        value = result.get("value")
        metric = result["metric"]
        analysis.append((metric, value if value is not None else values.get(metric), result.get("phase")))
    record = Record(
        phase=status.get("phase"),
        weights=tuple(weights.get(role, 0) for role in ROLES),
        decay=(
            1 if conditions.get("DriftDetected") == "True" else 0,
            1 if conditions.get("ModelDegraded") == "True" else 0,
        ),
        replicas=replicas,
        ready=ready,
        monitoring=tuple(monitoring.items()),
        analysis=tuple(analysis),
    )
    with _lock:
        _records[key] = record


def _replicas(status: Mapping[str, Any], observed: Observed) -> tuple[tuple[int, ...], tuple[int, ...]]:
    revisions = {
        Role.STABLE: (status.get("stable") or {}).get("revision"),
        Role.CANDIDATE: (status.get("candidate") or {}).get("revision"),
    }
    states = [observed.revisions.get(revision) if revision else None for revision in revisions.values()]
    states.append(observed.fallback)  # in ROLES' order: stable, candidate, fallback
    return (
        tuple(state.replicas if state else 0 for state in states),
        tuple(state.ready if state else 0 for state in states),
    )


def forget(namespace: str, name: str) -> None:
    """Remove every series of a deleted ModelDeployment, its counters' too.

    As kube-state-metrics does for a deleted object: what it counted stays in Prometheus's
    history; the operator stops exporting it, so a cluster that makes and deletes
    ModelDeployments all day does not grow the operator's memory or the scrape with each one.
    """
    with _lock:
        _records.pop((namespace, name), None)
        counted = _counted.pop((namespace, name), set())
    for counter, labels in counted:
        counter.remove(*labels)


class StatusCollector(Collector):
    """The gauges, written from the records at each scrape."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(self._families())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = self._families()
        phase, weight, value, verdict, fallback, monitoring, decay, replicas, ready = families
        with _lock:
            records = list(_records.items())
        for (namespace, name), record in records:
            for each in PHASES:
                phase.add_metric([namespace, name, each], 1 if each == record.phase else 0)
            for role, share in zip(ROLES, record.weights, strict=True):
                weight.add_metric([namespace, name, role], share)
            fallback.add_metric([namespace, name], 1 if record.weights[_FALLBACK] else 0)
            for kind, detected in zip(DECAY_KINDS, record.decay, strict=True):
                decay.add_metric([namespace, name, kind], detected)
            for metric, measured in record.monitoring:
                monitoring.add_metric([namespace, name, metric], measured)
            for metric, latest, said in record.analysis:
                if latest is not None:
                    value.add_metric([namespace, name, metric], latest)
                for each in VERDICTS:
                    verdict.add_metric([namespace, name, metric, each], 1 if each == said else 0)
            if record.replicas is not None and record.ready is not None:
                for role, count, count_ready in zip(ROLES, record.replicas, record.ready, strict=True):
                    replicas.add_metric([namespace, name, role], count)
                    ready.add_metric([namespace, name, role], count_ready)
        return iter(families)

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        def gauge(name: str, documentation: str, *labels: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, documentation, labels=["namespace", "name", *labels])

        return [
            gauge(
                "modeldeploy_phase",
                "1 for the current phase of each ModelDeployment, 0 for the others.",
                "phase",
            ),
            gauge(
                "modeldeploy_traffic_weight",
                "Percent of live traffic per role (stable, candidate, fallback), as applied to the router.",
                "role",
            ),
            gauge("modeldeploy_analysis_value", "Latest measured value of each analysis metric.", "metric"),
            gauge(
                "modeldeploy_analysis_verdict",
                "1 for the latest verdict of each analysis metric, 0 for the others.",
                "metric",
                "verdict",
            ),
            gauge("modeldeploy_fallback_active", "1 while the fallback serves the ModelDeployment."),
            gauge(
                "modeldeploy_monitoring_value",
                "Latest value of each monitoring metric, measured on the stable revision after promotion.",
                "metric",
            ),
            gauge(
                "modeldeploy_decay_detected",
                "1 while condition DriftDetected (kind drift) or ModelDegraded (kind performance) is true.",
                "kind",
            ),
            gauge(
                "modeldeploy_revision_replicas",
                "Replicas of the revision in each role (stable, candidate, fallback): its Deployment's "
                "count, which an HPA sets under spec.autoscaling.",
                "role",
            ),
            gauge(
                "modeldeploy_revision_ready_replicas",
                "Ready replicas of the revision in each role (stable, candidate, fallback).",
                "role",
            ),
        ]


REGISTRY.register(StatusCollector())


def _rollback_reason(status: Mapping[str, Any] | None, fallback: str) -> str:
    history = (status or {}).get("history") or []
    return str(history[-1]["reason"]) if history else fallback
