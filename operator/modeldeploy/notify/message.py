"""A notice in words: the title and body a person reads, and the data of its CloudEvent.

Every message names the ModelDeployment and the model, the version it is about
and the one that served before, the stage, the metric with its value and
threshold when one decided, and the ``kubectl modeldeploy`` command to act.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modeldeploy.api import NotificationEvent
from modeldeploy.plan.outputs import Notice


@dataclass(frozen=True)
class Origin:
    """Which ModelDeployment a notice comes from."""

    namespace: str
    name: str
    model: str


WARNING_EVENTS = frozenset(
    {
        NotificationEvent.ROLLED_BACK,
        NotificationEvent.ABORTED,
        NotificationEvent.ANALYSIS_INCONCLUSIVE,
        NotificationEvent.FALLBACK_ACTIVATED,
        NotificationEvent.DRIFT_DETECTED,
        NotificationEvent.MODEL_DEGRADED,
    }
)


def hint(origin: Origin, notice: Notice) -> str:
    """What to type next (the plugin's real commands)."""
    target = f"{origin.name} -n {origin.namespace}"
    event = notice.event
    if event in (NotificationEvent.ROLLOUT_STARTED, NotificationEvent.STAGE_ENTERED):
        return f"kubectl modeldeploy promote {target} (next stage), or kubectl modeldeploy abort {target}"
    if event == NotificationEvent.ANALYSIS_INCONCLUSIVE:
        promote, abort = f"kubectl modeldeploy promote {target}", f"kubectl modeldeploy abort {target}"
        return f"check the metric, then {promote} or {abort}"
    if event in (NotificationEvent.ROLLED_BACK, NotificationEvent.ABORTED):
        return f"fix the model and change spec.model, or kubectl modeldeploy retry {target}"
    if event == NotificationEvent.PROMOTED:
        return f"kubectl modeldeploy undo {target} returns to the previous revision"
    if event in (NotificationEvent.DRIFT_DETECTED, NotificationEvent.MODEL_DEGRADED):
        return f"kubectl modeldeploy get {target}; kubectl modeldeploy undo {target} to go back"
    if event == NotificationEvent.FALLBACK_ACTIVATED:
        return f"kubectl modeldeploy get {target}; the stable revision needs Ready replicas"
    return f"kubectl modeldeploy get {target}"


def title(origin: Origin, notice: Notice) -> str:
    return f"[modeldeploy] {notice.event.value}: {origin.namespace}/{origin.name} ({origin.model})"


def body(origin: Origin, notice: Notice) -> str:
    lines = [
        f"{notice.event.value}: {notice.summary}",
        f"ModelDeployment: {origin.namespace}/{origin.name}",
        f"Model: {origin.model}",
    ]
    if notice.version or notice.revision:
        lines.append(f"Version: {notice.version or '-'} (revision {notice.revision or '-'})")
    if notice.stable_version or notice.stable_revision:
        lines.append(
            f"Stable before: {notice.stable_version or '-'} (revision {notice.stable_revision or '-'})"
        )
    if notice.stage:
        lines.append(f"Stage: {notice.stage}")
    if notice.metric:
        value = "no data" if notice.value is None else f"{notice.value:g}"
        lines.append(f"Metric: {notice.metric} = {value} (threshold: {notice.threshold or '-'})")
    lines.append(f"Act: {hint(origin, notice)}")
    return "\n".join(lines)


def data(origin: Origin, notice: Notice) -> dict[str, Any]:
    """The CloudEvent ``data`` (JSON); the README documents these fields."""
    return {
        "namespace": origin.namespace,
        "name": origin.name,
        "model": origin.model,
        "event": notice.event.value,
        "key": notice.key,
        "summary": notice.summary,
        "revision": notice.revision,
        "version": notice.version,
        "stableRevision": notice.stable_revision,
        "stableVersion": notice.stable_version,
        "stage": notice.stage,
        "metric": notice.metric,
        "value": notice.value,
        "threshold": notice.threshold,
        "action": hint(origin, notice),
    }
