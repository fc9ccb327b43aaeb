"""After promotion: decay and drift monitoring, and retraining requests.

``spec.monitoring.metrics`` are measured on the stable revision every
``interval`` with the same engine as rollout analysis (the reconciler measures;
this module decides). A metric that fails ``failureLimit`` measurements in a
row is a *breach*; an Inconclusive measurement is never a breach and never a
clean bill, so it leaves the conditions as they were. Each metric has a kind:
``Drift`` sets condition ``DriftDetected``, ``Performance`` sets
``ModelDegraded``; a condition clears when every metric of its kind is healthy
again.

On a breach, ``monitoring.retrain`` starts one retraining: a Job
``<name>-retrain-<n>`` from ``jobTemplate`` and/or a webhook call, never two at
once, and not again before ``cooldown`` has passed since the last one started.
The Job is applied only in the reconcile that starts it (so deleting it by hand
does not re-run training); its outcome, read from the Job's status, and the
webhook's answer land in ``status.retrain``. A retrained model comes back like
any change: a new ``spec.model.version`` in Git, then the normal rollout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modeldeploy.api import (
    Condition,
    ConditionType,
    MeasurementPhase,
    MetricKind,
    MetricResult,
    ModelDeploymentSpec,
    NotificationEvent,
    RetrainOutcome,
    RetrainStatus,
    StableRevision,
    WebhookOutcome,
)
from modeldeploy.api.times import format_time
from modeldeploy.plan.conditions import set_condition
from modeldeploy.plan.notices import metric_facts
from modeldeploy.plan.outputs import Event, Notice
from modeldeploy.plan.schedule import retrain_cooling_down
from modeldeploy.plan.workloads import Owner

CONDITION_FOR = {
    MetricKind.DRIFT: ConditionType.DRIFT_DETECTED,
    MetricKind.PERFORMANCE: ConditionType.MODEL_DEGRADED,
}
CLEARED_EVENT = {MetricKind.DRIFT: "DriftCleared", MetricKind.PERFORMANCE: "ModelRecovered"}


@dataclass(frozen=True)
class RetrainStart:
    """A retraining Job to create this round: its name and the breach it answers."""

    job: str
    breach: MetricResult


@dataclass(frozen=True)
class MonitoringOutcome:
    """What monitoring decided this round: results, conditions, the retraining, Events, a Job to start.

    Invariants: ``start`` is set only in the round that starts its retraining
    (so a Job deleted by hand is not re-run); at most one retraining is
    Pending or Running at a time.
    """

    results: tuple[MetricResult, ...]
    conditions: tuple[Condition, ...]
    retrain: RetrainStatus | None
    events: tuple[Event, ...] = ()
    start: RetrainStart | None = None
    notices: tuple[Notice, ...] = ()


NOTICE_FOR = {
    MetricKind.DRIFT: NotificationEvent.DRIFT_DETECTED,
    MetricKind.PERFORMANCE: NotificationEvent.MODEL_DEGRADED,
}


@dataclass
class _Draft:
    results: list[MetricResult]
    conditions: list[Condition]
    retrain: RetrainStatus | None
    events: list[Event] = field(default_factory=list)
    start: RetrainStart | None = None
    notices: list[Notice] = field(default_factory=list)

    def outcome(self) -> MonitoringOutcome:
        return MonitoringOutcome(
            tuple(self.results),
            tuple(self.conditions),
            self.retrain,
            tuple(self.events),
            self.start,
            tuple(self.notices),
        )

    def notify(
        self, event: NotificationEvent, key: str, summary: str, stable: StableRevision, **facts: Any
    ) -> None:
        self.notices.append(
            Notice(
                event,
                f"{event.value}/{key}"[:256],
                summary,
                revision=stable.revision,
                version=stable.version,
                stable_revision=stable.revision,
                stable_version=stable.version,
                stage="monitoring",
                **facts,
            )
        )


def monitor(
    owner: Owner,
    spec: ModelDeploymentSpec,
    stable: StableRevision | None,
    results: Sequence[MetricResult],
    conditions: Sequence[Condition],
    retrain: RetrainStatus | None,
    jobs: Mapping[str, str],
    webhook: WebhookOutcome | None,
    now: datetime,
    generation: int,
) -> MonitoringOutcome:
    monitoring = spec.monitoring
    out = _Draft(list(results), list(conditions), retrain)
    if monitoring is None or stable is None:
        return out.outcome()
    latest = {r.metric: r for r in results}
    breaches: list[tuple[MetricKind, MetricResult]] = []
    for kind in MetricKind:
        metrics = [m for m in monitoring.metrics if m.kind == kind]
        if not metrics:
            continue
        measured = [latest.get(m.name) for m in metrics]
        failing = [r for r in measured if r is not None and r.failures >= monitoring.failure_limit]
        healthy = all(r is not None and r.phase == MeasurementPhase.SUCCESSFUL for r in measured)
        condition_type = CONDITION_FOR[kind]
        previous = next((c for c in out.conditions if c.type == condition_type), None)
        was_true = previous is not None and previous.status == "True"
        if failing:
            breaches += [(kind, r) for r in failing]
            message = "; ".join(r.message or r.metric for r in failing)
            out.conditions = set_condition(
                out.conditions, condition_type, True, "MetricBreached", message, now, generation
            )
            if not was_true:
                out.events.append(Event("Warning", condition_type.value, f"{stable.revision}: {message}"))
                out.notify(
                    NOTICE_FOR[kind],
                    f"{stable.revision}/{format_time(now)}",
                    f"{stable.revision}: {message}",
                    stable,
                    **metric_facts(metrics, out.results, failing[0].metric),
                )
        elif healthy:
            out.conditions = set_condition(
                out.conditions, condition_type, False, "MetricsHealthy", "", now, generation
            )
            if was_true:
                out.events.append(
                    Event("Normal", CLEARED_EVENT[kind], f"{stable.revision}: every metric healthy")
                )
    out.retrain = _follow_retrain(out, retrain, jobs, webhook, now)
    if out.retrain is not None and out.retrain is not retrain and out.retrain.finished_at == now:
        finished = out.retrain
        out.notify(
            NotificationEvent.RETRAIN_FINISHED,
            f"{owner.name}/{finished.count}",
            f"retraining {finished.count} {finished.outcome.value if finished.outcome else ''}: "
            f"{finished.message or ''}",
            stable,
            metric=finished.metric,
            value=finished.value,
        )
    if breaches and monitoring.retrain is not None:
        _maybe_start(out, owner, spec, breaches[0][1], now)
        started = out.retrain
        if started is not None and started is not retrain and started.at == now and started.count:
            out.notify(
                NotificationEvent.RETRAIN_STARTED,
                f"{owner.name}/{started.count}",
                f"retraining {started.count} started: {started.message or started.metric}",
                stable,
                **metric_facts(monitoring.metrics, out.results, started.metric),
            )
    return out.outcome()


def _follow_retrain(
    out: _Draft,
    retrain: RetrainStatus | None,
    jobs: Mapping[str, str],
    webhook: WebhookOutcome | None,
    now: datetime,
) -> RetrainStatus | None:
    if retrain is None or retrain.outcome in (RetrainOutcome.SUCCEEDED, RetrainOutcome.FAILED):
        return retrain
    update: dict[str, Any] = {}
    if webhook is not None and retrain.webhook is not None:
        update["message"] = webhook.message
        update["webhook_called_at"] = now
        if retrain.job is None:
            update["outcome"] = RetrainOutcome.SUCCEEDED if webhook.ok else RetrainOutcome.FAILED
        elif not webhook.ok:
            out.events.append(Event("Warning", "RetrainWebhookFailed", webhook.message))
    job_state = jobs.get(retrain.job or "")
    if retrain.job is not None and job_state in ("Succeeded", "Failed"):
        update["outcome"] = RetrainOutcome(job_state)
        update["message"] = f"Job {retrain.job} {job_state.lower()}" + (
            f"; {update['message']}" if update.get("message") else ""
        )
    if retrain.job is not None and job_state == "Running" and retrain.outcome == RetrainOutcome.PENDING:
        update["outcome"] = RetrainOutcome.RUNNING
    if update.get("outcome") in (RetrainOutcome.SUCCEEDED, RetrainOutcome.FAILED):
        update["finished_at"] = now
        outcome = update["outcome"]
        event = Event("Normal", "RetrainSucceeded", update.get("message") or "succeeded")
        if outcome == RetrainOutcome.FAILED:
            event = Event("Warning", "RetrainFailed", update.get("message") or "failed")
        out.events.append(event)
    return retrain.model_copy(update=update) if update else retrain


def _maybe_start(
    out: _Draft,
    owner: Owner,
    spec: ModelDeploymentSpec,
    breach: MetricResult,
    now: datetime,
) -> None:
    retrain_spec = spec.monitoring.retrain if spec.monitoring else None
    assert retrain_spec is not None
    last = out.retrain
    if last is not None and last.outcome in (RetrainOutcome.PENDING, RetrainOutcome.RUNNING):
        return  # one at a time
    if retrain_cooling_down(spec, last, now):
        return
    count = (last.count if last else 0) + 1
    job_name = f"{owner.name}-retrain-{count}" if retrain_spec.job_template is not None else None
    if job_name is not None:
        out.start = RetrainStart(job_name, breach)
    out.retrain = RetrainStatus(
        count=count,
        job=job_name,
        webhook=retrain_spec.webhook.url if retrain_spec.webhook else None,
        outcome=RetrainOutcome.PENDING,
        at=now,
        metric=breach.metric,
        value=breach.value,
        message=breach.message,
    )
    what = (
        f"Job {job_name}"
        if job_name
        else f"webhook {retrain_spec.webhook.url if retrain_spec.webhook else ''}"
    )
    out.events.append(Event("Normal", "RetrainStarted", f"{what}: {breach.message or breach.metric}"))
