"""What answers when the serving model cannot: the previous revision, another model, or a fixed response.

A fallback is a standing safety net, separate from rollouts: it keeps a small
``<name>-fallback`` Deployment and Service warm and, when its trigger fires
(no ready replicas, or a threshold metric failing), the router sends traffic
there until the stable revision has been healthy again for a while.

Each mode needs its own settings, and settings of another mode are a mistake
(``response:`` under ``mode: Model`` would be silently ignored), so both
directions are checked at admission.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from modeldeploy.api.analysis import ThresholdMetrics
from modeldeploy.api.base import SpecModel
from modeldeploy.api.durations import Interval, at_most
from modeldeploy.api.revision import VERSION_PATTERN
from modeldeploy.api.rules import cel_rule


class FallbackMode(StrEnum):
    """Which backend takes over when the fallback is triggered."""

    PREVIOUS_REVISION = "PreviousRevision"
    MODEL = "Model"
    RESPONSE = "Response"


class FallbackModel(SpecModel):
    """A separate, usually simpler, model served by the fallback Deployment (mode Model)."""

    version: str = Field(
        min_length=1, max_length=63, pattern=VERSION_PATTERN, description="Version of the fallback model."
    )
    name: str | None = Field(
        default=None, min_length=1, max_length=253, description="Model name; spec.model.name when absent."
    )
    uri: str | None = Field(
        default=None, max_length=2048, description="Where the server loads the model from."
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="Server image; spec.runtime.image when absent.",
    )


class StaticResponse(SpecModel):
    """A fixed HTTP answer returned for every request (mode Response)."""

    status: int = Field(default=200, ge=100, le=599, description="HTTP status code. Default 200.")
    content_type: str = Field(
        default="application/json", min_length=1, max_length=255, description="Content-Type header."
    )
    body: str = Field(
        default="", max_length=16384, description='Response body, e.g. {"score": 0, "fallback": true}.'
    )


class FallbackTrigger(SpecModel):
    """When traffic fails over to the fallback, and when it comes back."""

    no_ready_replicas: bool = Field(
        default=True, description="Fail over when the stable revision has no ready replicas. Default true."
    )
    metrics: ThresholdMetrics | None = Field(
        default=None, description="Fail over when one of these metrics fails failureLimit times in a row."
    )
    interval: Annotated[Interval, at_most("1h")] = Field(
        default="30s", description="Time between checks; 5s to 1h. Default 30s."
    )
    failure_limit: int = Field(
        default=2, ge=1, le=100, description="Consecutive failed checks before failing over. Default 2."
    )
    recover_after: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Consecutive healthy checks before traffic returns to the stable revision. Default 3.",
    )


class Fallback(SpecModel):
    """A standing fallback backend and the trigger that switches traffic to it."""

    mode: Annotated[FallbackMode, Field(strict=False)] = Field(
        default=FallbackMode.PREVIOUS_REVISION,
        description=(
            "PreviousRevision (keep the last stable revision running), Model (serve fallback.model) "
            "or Response (answer with fallback.response). Default PreviousRevision."
        ),
    )
    replicas: int = Field(
        default=1, ge=1, le=100, description="Replicas of the fallback Deployment. Default 1."
    )
    model: FallbackModel | None = Field(
        default=None, description="The fallback model; required with mode Model."
    )
    response: StaticResponse | None = Field(
        default=None, description="The fixed response; required with mode Response."
    )
    trigger: FallbackTrigger = Field(
        default_factory=FallbackTrigger, description="When to fail over; by default when no replica is ready."
    )

    @cel_rule(
        "!has(self.mode) || self.mode != 'Model' || has(self.model)",
        "{path}.model is required when mode is Model",
    )
    def _model_present(self) -> bool:
        return self.mode != FallbackMode.MODEL or self.model is not None

    @cel_rule(
        "!has(self.mode) || self.mode != 'Response' || has(self.response)",
        "{path}.response is required when mode is Response",
    )
    def _response_present(self) -> bool:
        return self.mode != FallbackMode.RESPONSE or self.response is not None

    @cel_rule(
        "!has(self.model) || (has(self.mode) && self.mode == 'Model')",
        "{path}.model is only used with mode Model: set mode: Model or remove it",
    )
    def _model_used(self) -> bool:
        return self.model is None or self.mode == FallbackMode.MODEL

    @cel_rule(
        "!has(self.response) || (has(self.mode) && self.mode == 'Response')",
        "{path}.response is only used with mode Response: set mode: Response or remove it",
    )
    def _response_used(self) -> bool:
        return self.response is None or self.mode == FallbackMode.RESPONSE
