"""The ModelDeployment API (modeldeploy.io/v1alpha1): typed models, CRD generation, validation.

This package is the one source of truth for what users write and what the
operator reports. Other layers import from here:

- parse raw objects: :func:`parse_manifest`, :func:`parse_spec`, :func:`parse_status`
  (they raise :class:`InvalidManifestError` holding :class:`Problem` s);
- check what admission cannot: :func:`check_spec`, :func:`check_update`, :func:`lint_manifest`;
- durations: :func:`parse_duration`, :func:`format_duration`;
- the CRD: :func:`modeldeploy.api.crd.render_crd`.

It imports neither kubernetes, kopf nor requests (an import-linter contract).
"""

from modeldeploy.api.analysis import (
    Analysis,
    AnalysisMetric,
    CompareToStable,
    InconclusivePolicy,
    MetricQuery,
    PrometheusSource,
    SecretKeySelector,
    ThresholdMetric,
)
from modeldeploy.api.autoscaling import Autoscaling, Behavior, MetricSpec
from modeldeploy.api.durations import DurationError, format_duration, parse_duration
from modeldeploy.api.fallback import Fallback, FallbackMode, FallbackModel, FallbackTrigger, StaticResponse
from modeldeploy.api.manifest import ModelDeployment, ObjectMeta, parse_manifest, parse_spec, parse_status
from modeldeploy.api.monitoring import MetricKind, Monitoring, MonitoringMetric, Retrain, RetrainWebhook
from modeldeploy.api.names import API_VERSION, GROUP, KIND, PLURAL, VERSION
from modeldeploy.api.notifications import NotificationEvent, Subscription
from modeldeploy.api.outcomes import Verdict, VerdictKind, WebhookOutcome
from modeldeploy.api.problems import InvalidManifestError, Problem
from modeldeploy.api.revision import (
    EnvVar,
    ModelCard,
    ModelSpec,
    RegistryRef,
    ResourceRequirements,
    RuntimeSpec,
)
from modeldeploy.api.spec import LOCKED_MESSAGE, ModelDeploymentSpec
from modeldeploy.api.status import (
    NOTIFIED_KEEP,
    ActionRequest,
    ActionType,
    CandidateRevision,
    Condition,
    ConditionStatus,
    ConditionType,
    FallbackCounters,
    HistoryEntry,
    MeasurementPhase,
    MetricResult,
    ModelDeploymentStatus,
    OperatorState,
    Outcome,
    Phase,
    RegistryCard,
    RegistryStatus,
    RejectedRevision,
    RetrainOutcome,
    RetrainStatus,
    Role,
    StableRevision,
    Stage,
    TrafficShare,
)
from modeldeploy.api.strategy import (
    DEFAULT_SCALE_DOWN_DELAY,
    BlueGreen,
    Canary,
    CanaryStep,
    Shadow,
    Strategy,
    Warmup,
)
from modeldeploy.api.times import format_time
from modeldeploy.api.traffic import GatewayAPIRouting, IstioRouting, ParentReference, Router, TrafficSpec
from modeldeploy.api.validation import TEMPLATE_VARIABLES, check_spec, check_update, lint_manifest

__all__ = [
    "API_VERSION",
    "DEFAULT_SCALE_DOWN_DELAY",
    "GROUP",
    "KIND",
    "LOCKED_MESSAGE",
    "NOTIFIED_KEEP",
    "PLURAL",
    "TEMPLATE_VARIABLES",
    "VERSION",
    "ActionRequest",
    "ActionType",
    "Analysis",
    "AnalysisMetric",
    "Autoscaling",
    "Behavior",
    "BlueGreen",
    "Canary",
    "CanaryStep",
    "CandidateRevision",
    "CompareToStable",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "DurationError",
    "EnvVar",
    "Fallback",
    "FallbackCounters",
    "FallbackMode",
    "FallbackModel",
    "FallbackTrigger",
    "GatewayAPIRouting",
    "HistoryEntry",
    "InconclusivePolicy",
    "InvalidManifestError",
    "IstioRouting",
    "MeasurementPhase",
    "MetricKind",
    "MetricQuery",
    "MetricResult",
    "MetricSpec",
    "ModelCard",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelSpec",
    "Monitoring",
    "MonitoringMetric",
    "NotificationEvent",
    "ObjectMeta",
    "OperatorState",
    "Outcome",
    "ParentReference",
    "Phase",
    "Problem",
    "PrometheusSource",
    "RegistryCard",
    "RegistryRef",
    "RegistryStatus",
    "RejectedRevision",
    "ResourceRequirements",
    "Retrain",
    "RetrainOutcome",
    "RetrainStatus",
    "RetrainWebhook",
    "Role",
    "Router",
    "RuntimeSpec",
    "SecretKeySelector",
    "Shadow",
    "StableRevision",
    "Stage",
    "StaticResponse",
    "Strategy",
    "Subscription",
    "ThresholdMetric",
    "TrafficShare",
    "TrafficSpec",
    "Verdict",
    "VerdictKind",
    "Warmup",
    "WebhookOutcome",
    "check_spec",
    "check_update",
    "format_duration",
    "format_time",
    "lint_manifest",
    "parse_duration",
    "parse_manifest",
    "parse_spec",
    "parse_status",
]
