"""``spec`` of a ModelDeployment: the desired state a user keeps in Git.

This module assembles the sections defined next door and holds the rules that
span sections: mirroring strategies need a router that can mirror, and a locked
spec cannot change. Everything else is checked where it is declared.

The lock is a CEL *transition* rule: the API server evaluates it on updates
with both the stored (``oldSelf``) and the new spec, so while both say
``locked: true`` nothing may change; an update that sets ``locked: false`` (or
drops the field) is the one way out. Its Python twin is
:func:`modeldeploy.api.validation.check_update`.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field

from modeldeploy.api.analysis import Analysis
from modeldeploy.api.autoscaling import Autoscaling
from modeldeploy.api.base import SpecModel
from modeldeploy.api.durations import Duration, at_most
from modeldeploy.api.fallback import Fallback
from modeldeploy.api.monitoring import Monitoring
from modeldeploy.api.notifications import Subscriptions
from modeldeploy.api.revision import ModelSpec, RuntimeSpec
from modeldeploy.api.rules import cel_rule, cel_transition_rule
from modeldeploy.api.strategy import Strategy
from modeldeploy.api.traffic import Router, TrafficSpec

LOCKED_MESSAGE = "spec is locked: set spec.locked to false to change it"


class ModelDeploymentSpec(SpecModel):
    """Desired state: which model version to serve, how, and how to roll it out safely."""

    model: ModelSpec = Field(description="The model version to serve. Changing it starts a rollout.")
    runtime: RuntimeSpec = Field(description="The model server container. Changing it starts a rollout.")
    replicas: int = Field(
        default=1,
        ge=1,
        le=1000,
        description=(
            "Replicas of the stable revision. Default 1. With spec.autoscaling only the starting size: "
            "the HorizontalPodAutoscaler owns the count."
        ),
    )
    autoscaling: Autoscaling | None = Field(
        default=None,
        description="Scale every live revision with its load, through one HorizontalPodAutoscaler each.",
    )
    traffic: TrafficSpec | None = Field(
        default=None, description="How traffic is split between revisions; the service router when absent."
    )
    strategy: Strategy | None = Field(
        default=None,
        description="Rollout phases; without one a new revision takes all traffic as soon as it is ready.",
    )
    analysis: Analysis | None = Field(
        default=None, description="Prometheus metrics that must pass for a rollout to advance."
    )
    fallback: Fallback | None = Field(
        default=None, description="A standing fallback backend that takes traffic when the model cannot."
    )
    monitoring: Monitoring | None = Field(
        default=None, description="Checks of the stable revision after promotion; drift may start retraining."
    )
    progress_deadline: Annotated[Duration, at_most("24h")] = Field(
        default="10m",
        description=(
            "How long a new revision may take to get all its replicas Ready before the rollout is marked "
            "Degraded (traffic stays where it is). Default 10m."
        ),
    )
    notifications: Subscriptions = Field(
        default_factory=list,
        description=(
            "Rollout events to send to notification targets the operator's admin configured "
            "(Slack, Teams, email, webhooks): [{events: [Promoted, RolledBack], target: team-slack}]."
        ),
    )
    revision_history_limit: int = Field(
        default=5, ge=0, le=100, description="How many past revisions status.history keeps. Default 5."
    )
    paused: bool = Field(
        default=False,
        description="Hold any rollout where it is; traffic weights stay as they are. Default false.",
    )
    locked: bool = Field(
        default=False,
        description=(
            "Freeze the spec: while the stored object and the update both say true, admission refuses "
            "any change. Set it to false to change anything. Default false."
        ),
    )
    retired: bool = Field(
        default=False,
        description="Drain traffic and remove every serving object, keeping this record and its history.",
    )

    @property
    def router(self) -> Router:
        """The router in effect: ``spec.traffic.router``, or ``service`` without a traffic block."""
        return self.traffic.router if self.traffic is not None else Router.SERVICE

    @cel_rule(
        "!has(self.strategy) || !has(self.strategy.shadow)"
        " || (has(self.traffic) && self.traffic.router != 'service')",
        "{path}.strategy.shadow needs {path}.traffic.router gatewayAPI or istio:"
        " the service router cannot mirror",
        field_path=".strategy.shadow",
    )
    def _shadow_router(self) -> bool:
        return self.strategy is None or self.strategy.shadow is None or self.router != Router.SERVICE

    @cel_rule(
        "!has(self.strategy) || !has(self.strategy.warmup)"
        " || (has(self.traffic) && self.traffic.router != 'service')",
        "{path}.strategy.warmup needs {path}.traffic.router gatewayAPI or istio",
        field_path=".strategy.warmup",
    )
    def _warmup_router(self) -> bool:
        return self.strategy is None or self.strategy.warmup is None or self.router != Router.SERVICE

    @cel_transition_rule(
        "!(has(oldSelf.locked) && oldSelf.locked) || !(has(self.locked) && self.locked) || self == oldSelf",
        LOCKED_MESSAGE,
    )
    def _unchanged_while_locked(self, old: Self) -> bool:
        # CEL compares the objects as stored, so a field written out with its default
        # value differs from an absent one; comparing what was set mirrors that.
        return (
            not old.locked
            or not self.locked
            or self.model_dump(exclude_unset=True) == old.model_dump(exclude_unset=True)
        )
