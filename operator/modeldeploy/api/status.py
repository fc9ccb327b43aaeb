"""``status`` of a ModelDeployment: where a rollout stands, written by the operator, read by people.

The status is the operator's whole memory (an operator restarted at any moment
resumes from it), and it is what an SRE reads at 3 a.m., so it says both what
is true (phase, revisions, traffic weights, last measurements, conditions) and
how it got there (history).

One field is written by people: ``status.action``. Manual decisions (promote,
abort, retry, undo) must not go into ``spec``, because a GitOps tool would revert
them; they are requests patched through the status subresource, by
``kubectl modeldeploy promote`` or by hand::

    kubectl patch mdep fraud --subresource=status --type=merge \\
      -p '{"status":{"action":{"type":"Promote","requestedAt":"2026-11-22T10:00:00Z"}}}'

The operator carries the request out, records the outcome in ``history`` and an
Event, and clears ``status.action``.

Conditions follow the Kubernetes API conventions (type, status, CamelCase
reason, message, lastTransitionTime, observedGeneration), as metav1.Condition.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    model_serializer,
)

from modeldeploy.api.base import StatusModel
from modeldeploy.api.revision import PRESERVE_UNKNOWN, OpenObject
from modeldeploy.api.rules import cel_rule
from modeldeploy.api.times import WireTime
from modeldeploy.api.traffic import Router

RevisionName = Annotated[str, Field(min_length=1, max_length=253)]
Version = Annotated[str, Field(max_length=63)]


class Phase(StrEnum):
    """Where the ModelDeployment stands as a whole."""

    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    STABLE = "Stable"
    ROLLED_BACK = "RolledBack"
    DEGRADED = "Degraded"
    RETIRED = "Retired"
    INVALID = "Invalid"


class Stage(StrEnum):
    """Which rollout phase the candidate is in."""

    DEPLOYING = "Deploying"
    WARMUP = "Warmup"
    SHADOW = "Shadow"
    CANARY = "Canary"
    BLUE_GREEN = "BlueGreen"
    PROMOTING = "Promoting"


class Role(StrEnum):
    """What a revision does in the traffic split."""

    STABLE = "stable"
    CANDIDATE = "candidate"
    FALLBACK = "fallback"


class MeasurementPhase(StrEnum):
    """The verdict of a metric's latest measurement."""

    PENDING = "Pending"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"


class Outcome(StrEnum):
    """How a revision's time as candidate or stable ended."""

    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"
    SUPERSEDED = "Superseded"
    RETIRED = "Retired"


class ActionType(StrEnum):
    """A manual decision requested through status.action."""

    PROMOTE = "Promote"
    PROMOTE_FULL = "PromoteFull"
    ABORT = "Abort"
    RETRY = "Retry"
    UNDO = "Undo"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(StrEnum):
    """The condition types the operator sets."""

    READY = "Ready"
    PROGRESSING = "Progressing"
    AVAILABLE = "Available"
    DEGRADED = "Degraded"
    FALLBACK_ACTIVE = "FallbackActive"
    DRIFT_DETECTED = "DriftDetected"
    MODEL_DEGRADED = "ModelDegraded"
    ROUTE_ACCEPTED = "RouteAccepted"
    INVALID_SPEC = "InvalidSpec"
    NOTIFICATIONS_REFUSED = "NotificationsRefused"
    REGISTRY_REACHABLE = "RegistryReachable"


class StableRevision(StatusModel):
    """The revision serving production traffic."""

    revision: RevisionName = Field(description="Name of the revision (and of its Deployment).")
    version: Version = Field(description="Model version of the revision.")
    since: AwareDatetime | None = Field(default=None, description="When it became stable.")


class CandidateRevision(StatusModel):
    """The revision under test."""

    revision: RevisionName = Field(description="Name of the revision (and of its Deployment).")
    version: Version = Field(description="Model version of the revision.")
    stage: Stage = Field(description="Deploying, Warmup, Shadow, Canary, BlueGreen or Promoting.")
    step: int | None = Field(default=None, ge=0, le=100, description="Canary step index, from 0.")
    weight: int = Field(default=0, ge=0, le=100, description="Percent of live traffic it receives now.")
    stage_started_at: AwareDatetime | None = Field(
        default=None, description="When the current stage or step began."
    )


class TrafficShare(StatusModel):
    """One backend's share of the traffic as last applied to the router."""

    revision: RevisionName = Field(description="Revision receiving the traffic.")
    role: Role = Field(description="stable, candidate or fallback.")
    weight: int = Field(ge=0, le=100, description="Percent of live traffic; the weights sum to 100.")
    mirror_percent: int | None = Field(
        default=None, ge=0, le=100, description="Percent of live traffic mirrored to it (candidate only)."
    )


class MetricResult(StatusModel):
    """The latest measurement of one analysis metric."""

    metric: Annotated[str, Field(max_length=63)] = Field(description="Name of the metric.")
    phase: MeasurementPhase = Field(description="Pending, Successful, Failed or Inconclusive.")
    value: float | None = Field(default=None, description="The candidate's value.")
    stable_value: float | None = Field(
        default=None, description="The stable revision's value (compareToStable)."
    )
    failures: int = Field(default=0, ge=0, description="Failed measurements in this stage.")
    inconclusive: int = Field(default=0, ge=0, description="Inconclusive measurements in a row.")
    measured_at: AwareDatetime | None = Field(default=None, description="When it was measured.")
    message: Annotated[str, Field(max_length=1024)] | None = Field(
        default=None, description="Why the verdict, e.g. 0.003 <= 0.01 or no data."
    )


class HistoryEntry(StatusModel):
    """A finished chapter: a revision promoted, rolled back, aborted, superseded or retired."""

    revision: RevisionName = Field(description="The revision concerned.")
    version: Version = Field(description="Its model version.")
    outcome: Outcome = Field(description="Promoted, RolledBack, Aborted, Superseded or Retired.")
    at: AwareDatetime = Field(description="When it happened.")
    reason: Annotated[str, Field(max_length=128)] = Field(description="CamelCase reason, e.g. MetricFailed.")
    message: Annotated[str, Field(max_length=1024)] | None = Field(
        default=None, description="Details for humans."
    )


class Condition(StatusModel):
    """A condition in the Kubernetes convention (metav1.Condition)."""

    type: Annotated[str, Field(min_length=1, max_length=316)] = Field(
        description="Ready, Progressing, Available, Degraded, FallbackActive, DriftDetected or InvalidSpec."
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: Annotated[
        str, Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    ] = Field(description="Why, in CamelCase, e.g. CanaryStepPassed.")
    message: Annotated[str, Field(max_length=32768)] = Field(default="", description="Details for humans.")
    last_transition_time: AwareDatetime = Field(description="When status last changed.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the condition was computed from."
    )


class RetrainOutcome(StrEnum):
    """Where the last retraining request stands."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class RetrainStatus(StatusModel):
    """The last retraining the operator started (a Job, a webhook call, or both)."""

    count: int = Field(default=0, ge=0, description="How many retrainings were started so far.")
    job: Annotated[str, Field(max_length=253)] | None = Field(default=None, description="The Job's name.")
    webhook: Annotated[str, Field(max_length=2048)] | None = Field(
        default=None, description="The URL called."
    )
    outcome: RetrainOutcome = Field(description="Pending, Running, Succeeded or Failed.")
    at: AwareDatetime = Field(description="When it was started.")
    finished_at: AwareDatetime | None = Field(default=None, description="When the outcome became final.")
    metric: Annotated[str, Field(max_length=63)] = Field(description="The breaching metric that started it.")
    value: float | None = Field(default=None, description="Its value at the time.")
    message: Annotated[str, Field(max_length=1024)] | None = Field(
        default=None, description="Details: the Job's condition, the webhook's answer."
    )
    webhook_called_at: AwareDatetime | None = Field(
        default=None, description="When the webhook was called (its answer is in message); unset: not yet."
    )
    webhook_starts: int = Field(
        default=0,
        ge=0,
        description="Webhook calls started for this retraining (each counted before it is made).",
    )


class ActionRequest(StatusModel):
    """A manual decision, patched into status by a person or `kubectl modeldeploy`; cleared once carried out.

    Promote: leave the current pause or step. PromoteFull: skip remaining steps
    and analysis. Abort: roll the candidate back and stop. Retry: start the
    aborted candidate again. Undo: return to a previous revision (toRevision, or
    the one before the stable revision).
    """

    type: ActionType = Field(description="Promote, PromoteFull, Abort, Retry or Undo.")
    to_revision: RevisionName | None = Field(
        default=None, description="Undo only: the revision to return to; the previous stable one when absent."
    )
    requested_at: AwareDatetime | None = Field(
        default=None, description="When it was requested; tells repeated requests apart."
    )

    @cel_rule(
        "!has(self.toRevision) || self.type == 'Undo'",
        "{path}.toRevision is only used with type Undo",
    )
    def _to_revision_with_undo(self) -> bool:
        return self.to_revision is None or self.type == ActionType.UNDO


class RejectedRevision(StatusModel):
    """A revision rolled back or aborted, kept out until the spec changes or someone asks for a retry.

    Invariant: the rejection holds only for ``generation``; any spec change lifts it.
    """

    revision: RevisionName
    generation: int = Field(ge=0)


class FallbackCounters(StatusModel):
    """The fallback trigger's memory: whether traffic is on the fallback, and the checks counted so far.

    Invariants: ``failures`` counts failing metric checks in a row and
    ``healthy`` healthy checks in a row since the last unhealthy one; a check is
    counted at most once per ``trigger.interval`` after ``checked_at``.
    """

    active: bool = False
    failures: int = Field(default=0, ge=0)
    healthy: int = Field(default=0, ge=0)
    checked_at: WireTime | None = None


NOTIFIED_KEEP = 32


class OperatorState(StatusModel):
    """The planner's own bookkeeping in ``status.operatorState``: typed here, open on the wire.

    Invariants, worst first:

    - ``revisions`` holds the source (model and runtime, as written) of every
      revision still running or in the history, so any of them can be rendered
      again (undo, fallback to the previous revision) after a restart;
    - ``undo`` is true only while a candidate that an undo created is on its
      way to stable; it is cleared at promotion and at rollback;
    - ``scale_down_at`` holds only former stable revisions kept warm by
      blue-green's scale-down delay, each with the time it may be scaled down;
    - keys this model does not know (kopf's progress: ``kopf``, ``touch``,
      ``lastHandledConfiguration``) pass through untouched.

    The wire form is the one operators before this model wrote (``undo`` and
    empty maps left out), so an operator upgraded mid-rollout reads it and an
    object at rest sees no write.
    """

    model_config = ConfigDict(extra="allow")

    revisions: dict[str, OpenObject] = Field(default_factory=dict)
    undo: bool = False
    scale_down_at: dict[str, WireTime] = Field(default_factory=dict)
    rejected: RejectedRevision | None = None
    fallback: FallbackCounters | None = None
    notified: list[Annotated[str, Field(max_length=256)]] = Field(default_factory=list)
    """Keys of the newest notices sent (at most ``NOTIFIED_KEEP``): a notice whose key is here is never
    sent again, by this operator or a restarted one, because the key is written before the send."""

    @model_serializer(mode="wrap")
    def _leave_out_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        wire: dict[str, Any] = handler(self)
        for key in ("undo", "scaleDownAt", "scale_down_at", "notified"):
            if key in wire and not wire[key]:
                del wire[key]
        wire.update(self.model_extra or {})  # kopf's keys, exactly as read
        return wire


OpenOperatorState = Annotated[OperatorState, WithJsonSchema({"type": "object", PRESERVE_UNKNOWN: True})]
"""The CRD keeps ``status.operatorState`` an open object: kopf writes its own keys there too."""


CardText = Annotated[str, Field(max_length=256)]
CARD_ENTRIES = 32


class RegistryCard(StatusModel):
    """The model card as the registry holds it: capped copies, for people (never interpreted)."""

    description: Annotated[str, Field(max_length=2048)] | None = Field(
        default=None, description="The version's description (or the registered model's)."
    )
    tags: dict[str, CardText] = Field(
        default_factory=dict, max_length=CARD_ENTRIES, description="The version's tags (capped)."
    )
    source: Annotated[str, Field(max_length=2048)] | None = Field(
        default=None, description="Where the registry says the version's artifacts came from."
    )
    run_id: Annotated[str, Field(max_length=64)] | None = Field(
        default=None, description="The training run the version was logged by."
    )
    metrics: dict[str, CardText] = Field(
        default_factory=dict,
        max_length=CARD_ENTRIES,
        description="The training run's metrics (latest values, capped).",
    )
    params: dict[str, CardText] = Field(
        default_factory=dict, max_length=CARD_ENTRIES, description="The training run's parameters (capped)."
    )
    datasets: list[CardText] = Field(
        default_factory=list, max_length=8, description="The training run's input datasets (name@digest)."
    )


class RegistryStatus(StatusModel):
    """What the model registry said last for spec.model.registry, and what was written back to it."""

    provider: Annotated[str, Field(max_length=63)] = Field(description="The registry provider.")
    model: Annotated[str, Field(max_length=256)] = Field(description="The registered model.")
    alias: Annotated[str, Field(max_length=63)] | None = Field(
        default=None, description="The alias followed, if any."
    )
    version: Annotated[str, Field(max_length=63)] | None = Field(
        default=None, description="The version resolved (the alias's target, or the pinned version)."
    )
    uri: Annotated[str, Field(max_length=2048)] | None = Field(
        default=None, description="The version's artifact URI, handed to the server as MODEL_URI."
    )
    card: RegistryCard | None = Field(default=None, description="The version's model card.")
    cards: dict[str, RegistryCard] = Field(
        default_factory=dict,
        max_length=2,
        description="The cards of other versions still serving (stable, candidate), by version.",
    )
    resolved_at: AwareDatetime | None = Field(
        default=None, description="When the registry last gave a different answer (version or URI)."
    )
    reported_until: AwareDatetime | None = Field(
        default=None,
        description="History entries up to this time have been written back to the registry (alias, tags).",
    )
    write_error: Annotated[str, Field(max_length=1024)] | None = Field(
        default=None, description="Why the last write-back failed (retried at the next poll), if it did."
    )


class ModelDeploymentStatus(StatusModel):
    """Observed state, written by the operator (except action)."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation of the spec this status reflects."
    )
    phase: Phase | None = Field(
        default=None,
        description="Pending, Progressing, Paused, Stable, RolledBack, Degraded, Retired or Invalid.",
    )
    message: Annotated[str, Field(max_length=4096)] | None = Field(
        default=None, description="One line on what is happening, e.g. canary step 2/3 at 25%."
    )
    router: Router | None = Field(
        default=None, description="The router in effect (spec.traffic.router or its default, service)."
    )
    stable: StableRevision | None = Field(
        default=None, description="The revision serving production traffic."
    )
    candidate: CandidateRevision | None = Field(default=None, description="The revision under test, if any.")
    traffic: list[TrafficShare] = Field(
        default_factory=list, max_length=8, description="Traffic split as last applied to the router."
    )
    analysis: list[MetricResult] = Field(
        default_factory=list, max_length=64, description="Latest measurement of each metric."
    )
    history: list[HistoryEntry] = Field(
        default_factory=list,
        max_length=100,
        description="Past outcomes, newest last; trimmed to revisionHistoryLimit.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "Ready, Progressing, Available, Degraded, FallbackActive, DriftDetected, ModelDegraded, "
            "RouteAccepted, InvalidSpec."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    monitoring: list[MetricResult] = Field(
        default_factory=list,
        max_length=64,
        description="Latest measurement of each monitoring metric on the stable revision.",
    )
    retrain: RetrainStatus | None = Field(default=None, description="The last retraining started, if any.")
    registry: RegistryStatus | None = Field(
        default=None, description="The model registry's answer for spec.model.registry, when set."
    )
    action: ActionRequest | None = Field(
        default=None,
        description=(
            "A manual request (Promote, PromoteFull, Abort, Retry, Undo) patched through the status "
            "subresource; the operator clears it once carried out."
        ),
    )
    operator_state: OpenOperatorState | None = Field(
        default=None,
        description="The operator's own bookkeeping (handler progress); not an interface.",
    )

    def condition(self, type_: str) -> Condition | None:
        """The condition of that type, if set."""
        return next((c for c in self.conditions if c.type == type_), None)
