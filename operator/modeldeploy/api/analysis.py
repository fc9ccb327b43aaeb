"""Metric checks that judge a candidate: PromQL queries with thresholds, read from Prometheus.

A metric is a query plus what makes its answer acceptable: an absolute bound
(``max``, ``min``) or, for champion/challenger, a bound relative to the same
query run for the stable revision (``compareToStable``). A metric with none of
these could never fail, which is always a mistake, so admission refuses it.

Queries are templates: ``{{revision}}``, ``{{namespace}}`` and friends are filled
in (escaped) by the analysis layer. Which variables exist cannot be checked in
CEL, so :mod:`modeldeploy.api.validation` checks it in the operator.

The same threshold metric shape is reused after promotion (``spec.monitoring``)
and for fallback triggers, where there is no stable revision to compare with;
those use :class:`ThresholdMetric`, which has no ``compareToStable``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from modeldeploy.api.base import DnsLabel, DnsSubdomain, SpecModel
from modeldeploy.api.durations import Interval, at_most
from modeldeploy.api.rules import CelCheck, cel_rule

QUERY_MAX_LENGTH = 4096
METRICS_MAX_ITEMS = 20


def _names_unique(metrics: list[Any]) -> bool:
    names = [metric.name for metric in metrics]
    return len(names) == len(set(names))


UNIQUE_NAMES = CelCheck(
    rule="self.all(m, self.exists_one(n, n.name == m.name))",
    message="{path}: metric names must be unique",
    check=_names_unique,
)


class InconclusivePolicy(StrEnum):
    """What to do when a metric has been inconclusive (no data, NaN, error) too often."""

    HOLD = "Hold"
    ROLLBACK = "Rollback"


class SecretKeySelector(SpecModel):
    """A key of a Secret in the ModelDeployment's namespace."""

    name: DnsSubdomain = Field(description="Name of the Secret, in the ModelDeployment's own namespace.")
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")] = Field(
        description="Key within the Secret."
    )


class PrometheusSource(SpecModel):
    """Where the metrics are read from."""

    address: str = Field(
        max_length=2048,
        pattern=r"^https?://",
        description="Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090.",
    )
    bearer_token_secret_ref: SecretKeySelector | None = Field(
        default=None, description="Secret key holding a bearer token sent with every query."
    )
    insecure_skip_verify: bool = Field(
        default=False, description="Skip TLS certificate verification. Default false; for test clusters only."
    )


class CompareToStable(SpecModel):
    """Champion/challenger: bound the candidate's value by the stable revision's value of the same query.

    The query is run twice per measurement, with ``{{revision}}`` (and ``{{role}}``)
    set to the candidate and then to the stable revision.
    """

    max_ratio: float | None = Field(
        default=None,
        gt=0,
        description="Candidate value must be at most this times the stable value, e.g. 1.2.",
    )
    max_diff: float | None = Field(
        default=None, description="Candidate value minus the stable value must be at most this, e.g. 0.005."
    )

    @cel_rule(
        "has(self.maxRatio) || has(self.maxDiff)",
        "{path}: set maxRatio, maxDiff or both",
    )
    def _bound_present(self) -> bool:
        return self.max_ratio is not None or self.max_diff is not None


class MetricQuery(SpecModel):
    """A named PromQL query and its absolute bounds; the base of both metric kinds."""

    name: DnsLabel = Field(description="Name of the metric, unique in its list; shown in status and Events.")
    query: str = Field(
        min_length=1,
        max_length=QUERY_MAX_LENGTH,
        description=(
            "PromQL returning one number. Template variables: {{namespace}}, {{name}}, {{revision}}, "
            "{{version}}, {{role}}, {{stableRevision}}, {{interval}}."
        ),
    )
    max: float | None = Field(default=None, description="The measurement fails when the value is above this.")
    min: float | None = Field(default=None, description="The measurement fails when the value is below this.")

    @cel_rule(
        "!has(self.min) || !has(self.max) || self.min <= self.max",
        "{path}: min must not be greater than max",
    )
    def _bounds_ordered(self) -> bool:
        return self.min is None or self.max is None or self.min <= self.max


class ThresholdMetric(MetricQuery):
    """A metric judged against absolute bounds (monitoring, fallback triggers)."""

    @cel_rule(
        "has(self.max) || has(self.min)",
        "{path}: each metric needs max or min",
    )
    def _has_bound(self) -> bool:
        return self.max is not None or self.min is not None


class AnalysisMetric(MetricQuery):
    """A metric that judges a candidate: absolute bounds, a comparison with the stable revision, or both."""

    compare_to_stable: CompareToStable | None = Field(
        default=None, description="Bound the candidate relative to the stable revision (champion/challenger)."
    )

    @cel_rule(
        "has(self.max) || has(self.min) || has(self.compareToStable)",
        "{path}: each metric needs max, min or compareToStable",
    )
    def _has_bound(self) -> bool:
        return self.max is not None or self.min is not None or self.compare_to_stable is not None


AnalysisMetrics = Annotated[
    list[AnalysisMetric], Field(min_length=1, max_length=METRICS_MAX_ITEMS), UNIQUE_NAMES
]
ThresholdMetrics = Annotated[
    list[ThresholdMetric], Field(min_length=1, max_length=METRICS_MAX_ITEMS), UNIQUE_NAMES
]


class Analysis(SpecModel):
    """Metric checks run while a candidate is under test (warm-up excluded); failures roll it back."""

    interval: Annotated[Interval, at_most("1h")] = Field(
        default="1m", description="Time between measurements; 5s to 1h. Default 1m."
    )
    failure_limit: int = Field(
        default=1,
        ge=1,
        le=100,
        description=(
            "A metric that fails this many measurements in one stage rolls the candidate back. Default 1."
        ),
    )
    inconclusive_limit: int = Field(
        default=3,
        ge=1,
        le=100,
        description=(
            "After this many inconclusive measurements (no data, NaN, query error) of one metric in a row, "
            "apply onInconclusive. Default 3."
        ),
    )
    on_inconclusive: Annotated[InconclusivePolicy, Field(strict=False)] = Field(
        default=InconclusivePolicy.HOLD,
        description="Hold (stay at the current step until data returns) or Rollback. Default Hold.",
    )
    provider: DnsLabel | None = Field(
        default=None,
        description=(
            "Metric provider to query, by name: one the cluster admin configured for the operator "
            "(address, TLS, credentials and headers stay with the admin). The admin's default provider "
            "when absent. Also used by spec.monitoring and spec.fallback.trigger."
        ),
    )
    prometheus: PrometheusSource | None = Field(
        default=None,
        description=(
            "An inline Prometheus address, honoured only when the admin allows inline providers; "
            "its bearer token Secret is read from this ModelDeployment's namespace. Prefer provider."
        ),
    )
    metrics: AnalysisMetrics = Field(description="The checks; all must pass for the rollout to advance.")

    @cel_rule(
        "!has(self.provider) || !has(self.prometheus)",
        "{path}: set provider or prometheus, not both",
    )
    def _one_source(self) -> bool:
        return self.provider is None or self.prometheus is None
