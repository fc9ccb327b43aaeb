"""Watching a promoted model for decay and drift, and asking for it to be retrained.

A model that passed its canary can still rot: inputs drift, the world moves.
Monitoring keeps measuring the stable revision after promotion with threshold
metrics (drift scores, live accuracy, calibration). When one keeps failing, the
operator sets the ``DriftDetected`` condition and, if ``retrain`` is set, starts
a Job from a template and/or calls a webhook, at most once per cooldown so a
persistent drift does not launch a Job every interval.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from modeldeploy.api.analysis import METRICS_MAX_ITEMS, UNIQUE_NAMES, ThresholdMetric
from modeldeploy.api.base import SpecModel
from modeldeploy.api.durations import Duration, Interval, at_most
from modeldeploy.api.revision import OpenObject
from modeldeploy.api.rules import cel_rule


class MetricKind(StrEnum):
    """What a failing monitoring metric means, and so which condition it sets."""

    DRIFT = "Drift"
    """The inputs (or the outputs' distribution) moved: condition DriftDetected."""
    PERFORMANCE = "Performance"
    """The model answers worse (live accuracy, precision, calibration): condition ModelDegraded."""


class MonitoringMetric(ThresholdMetric):
    """A threshold metric measured on the stable revision after promotion."""

    kind: Annotated[MetricKind, Field(strict=False)] = Field(
        default=MetricKind.DRIFT,
        description=(
            "Drift (a failure sets condition DriftDetected) or Performance (sets ModelDegraded). "
            "Default Drift."
        ),
    )


MonitoringMetrics = Annotated[
    list[MonitoringMetric], Field(min_length=1, max_length=METRICS_MAX_ITEMS), UNIQUE_NAMES
]


class RetrainWebhook(SpecModel):
    """An HTTP endpoint told about drift with a JSON POST (model, version, revision, failing metrics)."""

    url: str = Field(
        max_length=2048, pattern=r"^https?://", description="Where to POST, e.g. https://ml-platform/retrain."
    )
    timeout: Annotated[Duration, at_most("30s")] = Field(
        default="10s",
        description="Total time one call may take (connect, send, answer); at most 30s. Default 10s.",
    )
    retries: int = Field(
        default=3, ge=0, le=5, description="Further attempts after a failed call (at most 5). Default 3."
    )


class Retrain(SpecModel):
    """What to start when drift is detected: a Job, a webhook call, or both."""

    job_template: OpenObject | None = Field(
        default=None,
        description=(
            "A Kubernetes JobTemplateSpec (metadata, spec); the operator creates <name>-retrain-<n> from it "
            "with MODEL_NAME, MODEL_VERSION, MODEL_URI, MODEL_REVISION, DRIFT_METRIC and DRIFT_VALUE in the "
            "environment of every container."
        ),
    )
    webhook: RetrainWebhook | None = Field(default=None, description="An HTTP endpoint to notify.")
    cooldown: Annotated[Duration, at_most("720h")] = Field(
        default="24h", description="Minimum time between two retraining requests; at most 720h. Default 24h."
    )

    @cel_rule(
        "has(self.jobTemplate) || has(self.webhook)",
        "{path}: set jobTemplate, webhook or both",
    )
    def _has_target(self) -> bool:
        return self.job_template is not None or self.webhook is not None


class Monitoring(SpecModel):
    """Post-promotion checks of the stable revision; failures set DriftDetected and may start retraining."""

    interval: Annotated[Interval, at_most("24h")] = Field(
        default="5m", description="Time between measurements; 5s to 24h. Default 5m."
    )
    metrics: MonitoringMetrics = Field(
        description=(
            "Threshold metrics, e.g. a drift score with max: 0.2 (kind Drift) or live accuracy (Performance)."
        )
    )
    failure_limit: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Consecutive failed measurements of one metric before drift is declared. Default 3.",
    )
    retrain: Retrain | None = Field(default=None, description="What to start when drift is declared.")
