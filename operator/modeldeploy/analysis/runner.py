"""One round of measurements: render each metric's query, ask Prometheus, judge the answers.

This is the I/O glue the reconciler calls once per analysis interval; it is
synchronous and never raises for Prometheus or template trouble, which become
Inconclusive measurements with the reason in their message. Counting the
measurements into status and deciding what the stage does are pure steps
that follow (:mod:`modeldeploy.analysis.verdicts`).

A metric with ``compareToStable`` is queried twice, the same template rendered
for the candidate (``role=candidate``, ``revision`` the candidate's) and for
the stable revision (``role=stable``, ``revision`` the stable one); see
:func:`rollout_variables`. Post-promotion monitoring and fallback triggers use
:class:`~modeldeploy.api.ThresholdMetric` s, measured with the stable
revision's variables as the "candidate" and no comparison.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from modeldeploy.analysis.metrics import ANALYSIS_MEASUREMENTS, QueryOutcome
from modeldeploy.analysis.prometheus import QueryResult
from modeldeploy.analysis.templates import TemplateError, render_query, template_variables
from modeldeploy.analysis.thresholds import Measurement, judge
from modeldeploy.api import AnalysisMetric, MetricQuery, Role

logger = logging.getLogger("modeldeploy.analysis")


class QueryClient(Protocol):
    """What the runner needs from a Prometheus client (tests pass fakes)."""

    def query(self, promql: str) -> QueryResult: ...


def rollout_variables(
    *,
    namespace: str,
    name: str,
    candidate_revision: str,
    candidate_version: str,
    stable_revision: str | None,
    stable_version: str | None,
    interval: str,
) -> tuple[dict[str, str], dict[str, str] | None]:
    """Template variables for the candidate's rendering and, if there is a stable revision, the stable's.

    ``interval`` is ``spec.analysis.interval`` as written (``1m``), a valid
    PromQL duration. ``stableRevision`` is the stable revision in both (empty
    when there is none).
    """
    candidate = template_variables(
        namespace=namespace,
        name=name,
        revision=candidate_revision,
        version=candidate_version,
        role=Role.CANDIDATE,
        stable_revision=stable_revision or "",
        interval=interval,
    )
    if stable_revision is None:
        return candidate, None
    stable = template_variables(
        namespace=namespace,
        name=name,
        revision=stable_revision,
        version=stable_version or "",
        role=Role.STABLE,
        stable_revision=stable_revision,
        interval=interval,
    )
    return candidate, stable


def measure(
    metrics: Sequence[MetricQuery],
    candidate: Mapping[str, str],
    stable: Mapping[str, str] | None,
    client: QueryClient,
) -> list[Measurement]:
    """One measurement per metric, in order: the candidate's value judged against the metric's bounds.

    ``stable`` is the stable revision's variables (None when there is no stable
    revision: ``compareToStable`` metrics are then Inconclusive).
    """
    measurements = []
    for metric in metrics:
        answer = _ask(client, metric.query, candidate)
        compare = isinstance(metric, AnalysisMetric) and metric.compare_to_stable is not None
        stable_answer = _ask(client, metric.query, stable) if compare and stable is not None else None
        measurement = judge(metric, answer, stable_answer)
        ANALYSIS_MEASUREMENTS.labels(phase=measurement.phase.value).inc()
        logger.debug("measured %s: %s", metric.name, measurement.message)
        measurements.append(measurement)
    return measurements


def _ask(client: QueryClient, template: str, variables: Mapping[str, str]) -> QueryResult:
    try:
        promql = render_query(template, variables)
    except TemplateError as error:
        return QueryResult(template, QueryOutcome.ERROR, error=f"query template: {error}")
    return client.query(promql)
