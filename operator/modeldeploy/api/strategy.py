"""How a new revision earns production traffic: warm-up, shadow, then canary or blue-green.

The phases run in that fixed order and each is optional, so a manifest lists
only the ones it wants. Canary (traffic shifted in weighted steps) and
blue-green (a full preview, then one switch) are two answers to the same
question, which is why a strategy may hold one or the other but not both.

Warm-up and shadow have to reach the candidate without users seeing its
answers: warm-up sends synthetic requests, shadow mirrors live ones. Mirroring
needs a router that can mirror; that cross-section rule lives on the spec (see
:mod:`modeldeploy.api.spec`) because it reads ``spec.traffic`` too.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated

from pydantic import Field

from modeldeploy.api.base import DnsSubdomain, SpecModel
from modeldeploy.api.durations import Duration, at_most
from modeldeploy.api.rules import cel_rule

DEFAULT_SCALE_DOWN_DELAY = "30s"
"""How long a revision the route moved away from keeps running (as Argo Rollouts' scaleDownDelaySeconds)."""


class Warmup(SpecModel):
    """Synthetic requests sent to the candidate before it gets any real traffic, to fill caches and JITs."""

    requests: int = Field(
        default=100, ge=1, le=10_000, description="How many requests to send (at most 10000). Default 100."
    )
    concurrency: int = Field(
        default=1, ge=1, le=32, description="How many requests are in flight at once (at most 32). Default 1."
    )
    path: str = Field(
        min_length=1, max_length=1024, pattern=r"^/", description="Request path, e.g. /v2/models/fraud/infer."
    )
    payload_config_map: DnsSubdomain | None = Field(
        default=None,
        description=(
            "ConfigMap in the same namespace whose values are request bodies, sent as POSTs in turn. "
            "Without it the requests are GETs."
        ),
    )
    max_latency_p99: Annotated[Duration, at_most("1m")] | None = Field(
        default=None, description="Warm-up fails if the 99th percentile latency is above this, e.g. 300ms."
    )
    max_error_rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Warm-up fails if this fraction of requests fail (0..1), e.g. 0.01.",
    )
    timeout: Annotated[Duration, at_most("30m")] = Field(
        default="5m", description="Warm-up fails if it has not finished after this; at most 30m. Default 5m."
    )


class Shadow(SpecModel):
    """Live requests mirrored to the candidate; its answers are discarded, its metrics are analysed."""

    percent: int = Field(
        default=100, ge=0, le=100, description="Share of live requests mirrored (0..100). Default 100."
    )
    duration: Annotated[Duration, at_most("168h")] = Field(
        default="10m", description="How long to mirror before the next phase; at most 168h. Default 10m."
    )


class CanaryStep(SpecModel):
    """One step of a canary: a traffic weight held for a while."""

    weight: int = Field(ge=1, le=100, description="Percent of live traffic sent to the candidate (1..100).")
    pause: Annotated[Duration, at_most("168h")] | None = Field(
        default=None,
        description=(
            "How long to hold this weight, with analysis passing, before the next step. "
            "Without it the rollout waits here for `kubectl modeldeploy promote`."
        ),
    )


class Canary(SpecModel):
    """Shift traffic to the candidate in steps of increasing weight; promote after the last step."""

    steps: list[CanaryStep] = Field(
        min_length=1,
        max_length=20,
        description="Steps in order; weights must increase strictly, e.g. 5, 25, 50.",
    )

    @cel_rule(
        "self.steps.map(s, s.weight).isSorted()"
        " && self.steps.all(s, self.steps.exists_one(t, t.weight == s.weight))",
        "{path}.steps: weights must increase strictly from step to step, e.g. 5, 25, 50",
    )
    def _weights_increase(self) -> bool:
        weights = [step.weight for step in self.steps]
        return all(earlier < later for earlier, later in pairwise(weights))


class BlueGreen(SpecModel):
    """Run the candidate at full size beside the stable one, preview it, then switch all traffic at once."""

    preview_duration: Annotated[Duration, at_most("168h")] | None = Field(
        default=None,
        description=(
            "How long the candidate is reachable only through the <name>-candidate Service (with analysis "
            "running) before the switch. Without it the switch follows the first passing analysis, "
            "or readiness."
        ),
    )
    auto_promote: bool = Field(
        default=True,
        description=(
            "Switch traffic by itself after the preview. When false, wait for `kubectl modeldeploy promote`."
        ),
    )
    scale_down_delay: Annotated[Duration, at_most("24h")] = Field(
        default="5m",
        description="How long the old revision keeps running after the switch, for a fast undo. Default 5m.",
    )


class Strategy(SpecModel):
    """Rollout phases, run in the order warmup, shadow, canary or blueGreen; each is optional.

    Without a strategy (or with only warmup and shadow), the candidate takes all
    traffic once it is ready and the earlier phases have passed.
    """

    warmup: Warmup | None = Field(
        default=None, description="Synthetic warm-up requests before any live traffic."
    )
    shadow: Shadow | None = Field(
        default=None, description="Mirror live traffic to the candidate; needs router gatewayAPI or istio."
    )
    canary: Canary | None = Field(default=None, description="Weighted steps; exclusive with blueGreen.")
    blue_green: BlueGreen | None = Field(
        default=None, description="Preview, then switch; exclusive with canary."
    )
    scale_down_delay: Annotated[Duration, at_most("1h")] = Field(
        default=DEFAULT_SCALE_DOWN_DELAY,
        description=(
            "How long a revision keeps running after the route moves all live traffic away from it "
            "(the former stable after a promotion or undo, a candidate after a rollback), so requests "
            "the gateway already sent it finish. blueGreen.scaleDownDelay wins for a blue-green's former "
            "stable. At most 1h. Default 30s, also without a strategy."
        ),
    )

    @cel_rule(
        "!has(self.canary) || !has(self.blueGreen)",
        "{path}: set canary or blueGreen, not both",
    )
    def _one_progression(self) -> bool:
        return self.canary is None or self.blue_green is None
