"""``spec.notifications``: which rollout events a ModelDeployment's owners hear about, and where.

Tenants only *name* a target. The targets themselves (Slack, Teams, email,
webhooks: Apprise URLs holding tokens) belong to the admin and live in the
operator's configuration, never in a namespace (see
:mod:`modeldeploy.notify.config`). A subscription naming a target that does not
exist, or that this namespace may not use, is refused with the
``NotificationsRefused`` condition; the rollout goes on.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from modeldeploy.api.base import DnsLabel, SpecModel
from modeldeploy.api.rules import CelCheck

SUBSCRIPTIONS_MAX_ITEMS = 8


class NotificationEvent(StrEnum):
    """The closed set of events a subscription may name (also the CloudEvents ``type`` suffixes)."""

    ROLLOUT_STARTED = "RolloutStarted"
    STAGE_ENTERED = "StageEntered"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"
    ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
    FALLBACK_ACTIVATED = "FallbackActivated"
    FALLBACK_RECOVERED = "FallbackRecovered"
    DRIFT_DETECTED = "DriftDetected"
    MODEL_DEGRADED = "ModelDegraded"
    RETRAIN_STARTED = "RetrainStarted"
    RETRAIN_FINISHED = "RetrainFinished"

    @property
    def cloud_event_type(self) -> str:
        """The CloudEvents ``type``: stable, lower-case, dotted (``io.modeldeploy.rollout.promoted``)."""
        return CLOUD_EVENT_TYPES[self]


CLOUD_EVENT_TYPES: dict[NotificationEvent, str] = {
    NotificationEvent.ROLLOUT_STARTED: "io.modeldeploy.rollout.started",
    NotificationEvent.STAGE_ENTERED: "io.modeldeploy.rollout.stage_entered",
    NotificationEvent.PROMOTED: "io.modeldeploy.rollout.promoted",
    NotificationEvent.ROLLED_BACK: "io.modeldeploy.rollout.rolled_back",
    NotificationEvent.ABORTED: "io.modeldeploy.rollout.aborted",
    NotificationEvent.ANALYSIS_INCONCLUSIVE: "io.modeldeploy.rollout.analysis_inconclusive",
    NotificationEvent.FALLBACK_ACTIVATED: "io.modeldeploy.fallback.activated",
    NotificationEvent.FALLBACK_RECOVERED: "io.modeldeploy.fallback.recovered",
    NotificationEvent.DRIFT_DETECTED: "io.modeldeploy.monitoring.drift_detected",
    NotificationEvent.MODEL_DEGRADED: "io.modeldeploy.monitoring.model_degraded",
    NotificationEvent.RETRAIN_STARTED: "io.modeldeploy.retrain.started",
    NotificationEvent.RETRAIN_FINISHED: "io.modeldeploy.retrain.finished",
}


def _unique(items: list[Any]) -> bool:
    return len(items) == len(set(items))


UNIQUE_EVENTS = CelCheck(
    rule="self.all(e, self.exists_one(f, f == e))",
    message="{path}: each event at most once",
    check=_unique,
)


def _targets_unique(items: list[Any]) -> bool:
    targets = [item.target for item in items]
    return len(targets) == len(set(targets))


UNIQUE_TARGETS = CelCheck(
    rule="self.all(s, self.exists_one(t, t.target == s.target))",
    message="{path}: each target at most once (list all its events under one entry)",
    check=_targets_unique,
)


class Subscription(SpecModel):
    """Send these events of this ModelDeployment to one target the admin offers.

    The list is ``events``, not ``on``: YAML 1.1 parsers (PyYAML, and go-yaml v2
    under kubectl's sigs.k8s.io/yaml) read an unquoted ``on:`` key as the
    boolean true, so a manifest with ``on:`` would not say what it seems to.
    """

    events: Annotated[
        list[Annotated[NotificationEvent, Field(strict=False)]],
        Field(min_length=1, max_length=len(NotificationEvent)),
        UNIQUE_EVENTS,
    ] = Field(
        description=(
            "Events to send: RolloutStarted, StageEntered, Promoted, RolledBack, Aborted, "
            "AnalysisInconclusive, FallbackActivated, FallbackRecovered, DriftDetected, ModelDegraded, "
            "RetrainStarted, RetrainFinished."
        )
    )
    target: DnsLabel = Field(
        description=(
            "Name of a notification target the operator's admin configured (notificationTargets in the "
            "chart). Unknown or not offered to this namespace: refused with the NotificationsRefused "
            "condition."
        )
    )


Subscriptions = Annotated[list[Subscription], Field(max_length=SUBSCRIPTIONS_MAX_ITEMS), UNIQUE_TARGETS]
