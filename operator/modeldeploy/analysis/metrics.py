"""The operator's own metrics about analysis: how its Prometheus queries go and what it concluded.

An SRE whose rollouts all hold wants to see at once whether Prometheus is down
(``outcome="error"``), the queries find no data (``empty``) or the data is
NaN (``nan``). Labels are kept to small fixed sets: no metric names, queries
or ModelDeployment names, which would make the series count grow with use.
Every label value is created at import, so rates work from the first scrape.
"""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import Counter, Histogram

from modeldeploy.api import MeasurementPhase


class QueryOutcome(StrEnum):
    """How one Prometheus query ended; the ``outcome`` label of :data:`PROMETHEUS_QUERIES`."""

    SUCCESS = "success"
    """One finite number."""
    EMPTY = "empty"
    """An empty result: no series matched."""
    NAN = "nan"
    """NaN or an infinity, e.g. a rate divided by a rate of zero."""
    ERROR = "error"
    """No usable answer: network error, timeout, HTTP or PromQL error, several series, wrong type."""


PROMETHEUS_QUERIES = Counter(
    "modeldeploy_prometheus_queries",
    "Instant queries the operator sent to Prometheus, by outcome (success, empty, nan, error).",
    ["outcome"],
)

PROMETHEUS_QUERY_SECONDS = Histogram(
    "modeldeploy_prometheus_query_duration_seconds",
    "Time one Prometheus query took, including network errors and timeouts.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

ANALYSIS_MEASUREMENTS = Counter(
    "modeldeploy_analysis_measurements",
    "Metric measurements judged by the operator, by verdict (Successful, Failed, Inconclusive).",
    ["phase"],
)

for _outcome in QueryOutcome:
    PROMETHEUS_QUERIES.labels(outcome=_outcome.value)
for _phase in (MeasurementPhase.SUCCESSFUL, MeasurementPhase.FAILED, MeasurementPhase.INCONCLUSIVE):
    ANALYSIS_MEASUREMENTS.labels(phase=_phase.value)
