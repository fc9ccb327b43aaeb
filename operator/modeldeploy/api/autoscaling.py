"""``spec.autoscaling``: every live revision scales with its load, through a HorizontalPodAutoscaler.

The operator creates one ``autoscaling/v2`` HorizontalPodAutoscaler per live
revision, targeting that revision's Deployment. ``metrics`` and ``behavior``
are written exactly as in an HPA (``kubectl explain hpa.spec.metrics``) and
copied into each HPA; the operator picks ``minReplicas`` and ``maxReplicas``
per revision (a canary's bounds follow its weight, a promotion inherits the
stable revision's size) and otherwise leaves the replica count to the HPA:
with autoscaling on, ``spec.replicas`` is only the starting size.

Every field is typed and bounded: a tenant writes these objects through the
operator, so names are names (a metric name is a path segment of the custom
and external metrics APIs), lists are short and numbers are in range. The HPA
API server would refuse some of these later, as a failed apply the author
never sees; here they fail at admission, naming the field. KEDA users either
point an ``External`` metric at KEDA's metrics server, or leave
``spec.autoscaling`` out and keep a ScaledObject per revision themselves.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from modeldeploy.api.base import DnsSubdomain, SpecModel
from modeldeploy.api.revision import Quantity
from modeldeploy.api.rules import cel_rule

MAX_REPLICAS = 1000

QUALIFIED_NAME_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
"""A Kubernetes qualified name (``cpu``, ``nvidia.com/gpu``, ``app.kubernetes.io/name``)."""

QualifiedName = Annotated[str, Field(min_length=1, max_length=317, pattern=QUALIFIED_NAME_PATTERN)]

METRIC_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_:.-]*$"
"""A metric name as the custom and external metrics APIs take it in their URL path: no ``/``."""

LabelValue = Annotated[str, Field(max_length=63, pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")]


class MetricType(StrEnum):
    """Which kind of metric source (the HPA's ``type``)."""

    RESOURCE = "Resource"
    PODS = "Pods"
    OBJECT = "Object"
    EXTERNAL = "External"


class MetricTargetType(StrEnum):
    """How the metric is compared with its target."""

    UTILIZATION = "Utilization"
    VALUE = "Value"
    AVERAGE_VALUE = "AverageValue"


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(SpecModel):
    """One ``matchExpressions`` entry of a label selector."""

    key: QualifiedName = Field(description="The label key.")
    operator: Annotated[SelectorOperator, Field(strict=False)] = Field(
        description="In, NotIn, Exists or DoesNotExist."
    )
    values: list[LabelValue] | None = Field(
        default=None, max_length=64, description="Values for In and NotIn (at most 64)."
    )


class LabelSelector(SpecModel):
    """Which series of a metric count (a Kubernetes label selector)."""

    match_labels: dict[str, LabelValue] | None = Field(
        default=None, max_length=32, description="Labels that must match exactly (at most 32)."
    )
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None, max_length=16, description="Set-based requirements (at most 16)."
    )

    @cel_rule(
        "!has(self.matchLabels) || self.matchLabels.all(k, size(k) <= 317 && k.matches(r'"
        + QUALIFIED_NAME_PATTERN
        + "'))",
        "{path}.matchLabels keys must be label keys such as app.kubernetes.io/name",
    )
    def _label_keys(self) -> bool:
        return all(
            len(key) <= 317 and re.match(QUALIFIED_NAME_PATTERN, key) for key in self.match_labels or {}
        )


class MetricIdentifier(SpecModel):
    """A metric of the custom or external metrics API, by name and optional selector."""

    name: str = Field(
        min_length=1, max_length=253, pattern=METRIC_NAME_PATTERN, description="The metric's name."
    )
    selector: LabelSelector | None = Field(default=None, description="Narrows the metric to these series.")


class MetricTarget(SpecModel):
    """The value the HPA keeps the metric at: a utilization, a value, or an average value."""

    type: Annotated[MetricTargetType, Field(strict=False)] = Field(
        description="Utilization, Value or AverageValue."
    )
    value: Quantity | None = Field(default=None, description="Target value (type Value).")
    average_value: Quantity | None = Field(
        default=None, description="Target value averaged over the pods (type AverageValue)."
    )
    average_utilization: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Target percent of the pods' resource requests (type Utilization), 1..10000.",
    )

    @cel_rule(
        "self.type != 'Utilization' || has(self.averageUtilization)",
        "{path}.averageUtilization is required when type is Utilization",
    )
    def _utilization(self) -> bool:
        return self.type != MetricTargetType.UTILIZATION or self.average_utilization is not None

    @cel_rule("self.type != 'Value' || has(self.value)", "{path}.value is required when type is Value")
    def _value(self) -> bool:
        return self.type != MetricTargetType.VALUE or self.value is not None

    @cel_rule(
        "self.type != 'AverageValue' || has(self.averageValue)",
        "{path}.averageValue is required when type is AverageValue",
    )
    def _average_value(self) -> bool:
        return self.type != MetricTargetType.AVERAGE_VALUE or self.average_value is not None


class ResourceMetricSource(SpecModel):
    """A resource of the pods' containers (cpu, memory), as the resource metrics API reports it."""

    name: QualifiedName = Field(description="The resource, e.g. cpu or memory.")
    target: MetricTarget = Field(description="Utilization or AverageValue.")

    @cel_rule(
        "self.target.type != 'Value'",
        "{path}.target.type must be Utilization or AverageValue for a Resource metric",
    )
    def _target_type(self) -> bool:
        return self.target.type != MetricTargetType.VALUE


class PodsMetricSource(SpecModel):
    """A custom metric of each pod, averaged over the revision's pods."""

    metric: MetricIdentifier = Field(description="The metric.")
    target: MetricTarget = Field(description="AverageValue only.")

    @cel_rule(
        "self.target.type == 'AverageValue'",
        "{path}.target.type must be AverageValue for a Pods metric",
    )
    def _target_type(self) -> bool:
        return self.target.type == MetricTargetType.AVERAGE_VALUE


class CrossVersionObjectReference(SpecModel):
    """An object in the ModelDeployment's namespace (e.g. an Ingress) that a metric describes."""

    api_version: str | None = Field(
        default=None,
        max_length=317,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?v[0-9]+[a-z0-9]*$",
        description="The object's apiVersion, e.g. networking.k8s.io/v1.",
    )
    kind: str = Field(
        min_length=1, max_length=63, pattern=r"^[A-Z][A-Za-z0-9]*$", description="The object's kind."
    )
    name: DnsSubdomain = Field(description="The object's name, in the same namespace.")


class ObjectMetricSource(SpecModel):
    """A custom metric describing one object in the namespace."""

    described_object: CrossVersionObjectReference = Field(description="The object the metric describes.")
    metric: MetricIdentifier = Field(description="The metric.")
    target: MetricTarget = Field(description="Value or AverageValue.")

    @cel_rule(
        "self.target.type != 'Utilization'",
        "{path}.target.type must be Value or AverageValue for an Object metric",
    )
    def _target_type(self) -> bool:
        return self.target.type != MetricTargetType.UTILIZATION


class ExternalMetricSource(SpecModel):
    """A metric from outside the cluster (the external metrics API: KEDA, a Prometheus adapter)."""

    metric: MetricIdentifier = Field(description="The metric.")
    target: MetricTarget = Field(description="Value or AverageValue.")

    @cel_rule(
        "self.target.type != 'Utilization'",
        "{path}.target.type must be Value or AverageValue for an External metric",
    )
    def _target_type(self) -> bool:
        return self.target.type != MetricTargetType.UTILIZATION


_MEMBERS = {
    MetricType.RESOURCE: "resource",
    MetricType.PODS: "pods",
    MetricType.OBJECT: "object",
    MetricType.EXTERNAL: "external",
}


class MetricSpec(SpecModel):
    """One metric the HPA scales on, exactly as an HPA's ``spec.metrics`` entry."""

    type: Annotated[MetricType, Field(strict=False)] = Field(
        description="Resource, Pods, Object or External; the field of that name is set."
    )
    resource: ResourceMetricSource | None = Field(default=None, description="For type Resource.")
    pods: PodsMetricSource | None = Field(default=None, description="For type Pods.")
    object: ObjectMetricSource | None = Field(default=None, description="For type Object.")
    external: ExternalMetricSource | None = Field(default=None, description="For type External.")

    @cel_rule(
        "(self.type == 'Resource') == has(self.resource) && (self.type == 'Pods') == has(self.pods)"
        " && (self.type == 'Object') == has(self.object) && (self.type == 'External') == has(self.external)",
        "{path}: set exactly the field named by type (resource, pods, object or external) and no other",
    )
    def _one_source(self) -> bool:
        return all(
            (self.type == kind) == (getattr(self, member) is not None) for kind, member in _MEMBERS.items()
        )


class ScalingPolicyType(StrEnum):
    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(StrEnum):
    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class ScalingPolicy(SpecModel):
    """How much the HPA may change the replica count within a period."""

    type: Annotated[ScalingPolicyType, Field(strict=False)] = Field(description="Pods or Percent.")
    value: int = Field(ge=1, le=10_000, description="How many pods, or what percent (1..10000).")
    period_seconds: int = Field(
        ge=1, le=1800, description="The period the change is measured over (1..1800)."
    )


class ScalingRules(SpecModel):
    """Scaling rules in one direction, as an HPA's ``behavior.scaleUp`` / ``scaleDown``."""

    stabilization_window_seconds: int | None = Field(
        default=None, ge=0, le=3600, description="How far back the HPA looks before changing (0..3600)."
    )
    select_policy: Annotated[SelectPolicy, Field(strict=False)] | None = Field(
        default=None, description="Max, Min or Disabled: which policy wins. HPA default Max."
    )
    policies: list[ScalingPolicy] | None = Field(
        default=None, max_length=10, description="At most 10 policies."
    )


class Behavior(SpecModel):
    """How fast the HPA scales up and down, as an HPA's ``spec.behavior``."""

    scale_up: ScalingRules | None = Field(default=None, description="Rules for scaling up.")
    scale_down: ScalingRules | None = Field(default=None, description="Rules for scaling down.")


class Autoscaling(SpecModel):
    """One HorizontalPodAutoscaler per live revision; ``spec.replicas`` becomes only the starting size."""

    min_replicas: int = Field(
        default=1, ge=1, le=MAX_REPLICAS, description="Fewest replicas of the stable revision. Default 1."
    )
    max_replicas: int = Field(
        ge=1, le=MAX_REPLICAS, description="Most replicas of any revision (at most 1000)."
    )
    metrics: list[MetricSpec] | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description=(
            "What to scale on, as HPA autoscaling/v2 metric specs (at most 16). "
            "Without it the HPA's default: 80% average CPU utilization."
        ),
    )
    behavior: Behavior | None = Field(
        default=None, description="Scaling speed, as HPA autoscaling/v2 behavior."
    )

    @cel_rule(
        "!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",
        "{path}.minReplicas must not exceed {path}.maxReplicas",
    )
    def _min_below_max(self) -> bool:
        return self.min_replicas <= self.max_replicas
