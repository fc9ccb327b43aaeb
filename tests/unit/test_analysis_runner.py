"""One round of measurements: what is queried for whom, and how trouble becomes Inconclusive."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import REGISTRY

from modeldeploy.analysis import QueryOutcome, QueryResult, measure, rollout_variables
from modeldeploy.api import AnalysisMetric, CompareToStable, MeasurementPhase, ThresholdMetric

QUERY = 'latency{namespace="{{namespace}}",revision="{{revision}}",role="{{role}}"}'


class FakePrometheus:
    """Answers from a table of rendered queries; records what it was asked."""

    def __init__(self, answers: Mapping[str, float | None]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def query(self, promql: str) -> QueryResult:
        self.asked.append(promql)
        value = self.answers.get(promql)
        if value is None:
            return QueryResult(promql, QueryOutcome.EMPTY, error="no data: empty result")
        return QueryResult(promql, QueryOutcome.SUCCESS, value=value)


def rendered(revision: str, role: str) -> str:
    return f'latency{{namespace="risk",revision="{revision}",role="{role}"}}'


VARIABLES = rollout_variables(
    namespace="risk",
    name="fraud",
    candidate_revision="fraud-new",
    candidate_version="3.2.0",
    stable_revision="fraud-old",
    stable_version="3.1.0",
    interval="1m",
)


def test_rollout_variables_fill_revision_version_and_role_for_each_side() -> None:
    candidate, stable = VARIABLES
    assert stable is not None
    assert (candidate["revision"], candidate["version"], candidate["role"]) == (
        "fraud-new",
        "3.2.0",
        "candidate",
    )
    assert (stable["revision"], stable["version"], stable["role"]) == ("fraud-old", "3.1.0", "stable")
    assert candidate["stableRevision"] == stable["stableRevision"] == "fraud-old"
    assert candidate["interval"] == stable["interval"] == "1m"


def test_without_a_stable_revision_there_are_no_stable_variables() -> None:
    candidate, stable = rollout_variables(
        namespace="risk",
        name="fraud",
        candidate_revision="fraud-new",
        candidate_version="3.2.0",
        stable_revision=None,
        stable_version=None,
        interval="1m",
    )
    assert stable is None and candidate["stableRevision"] == ""


def test_a_comparison_queries_the_same_template_for_candidate_and_stable() -> None:
    prometheus = FakePrometheus(
        {rendered("fraud-new", "candidate"): 0.45, rendered("fraud-old", "stable"): 0.30}
    )
    metric = AnalysisMetric(name="p99", query=QUERY, compare_to_stable=CompareToStable(max_ratio=1.2))
    (measurement,) = measure([metric], *VARIABLES, prometheus)
    assert prometheus.asked == [rendered("fraud-new", "candidate"), rendered("fraud-old", "stable")]
    assert (measurement.phase, measurement.value, measurement.stable_value) == (
        MeasurementPhase.FAILED,
        0.45,
        0.30,
    )


def test_absolute_metrics_query_only_the_candidate() -> None:
    prometheus = FakePrometheus({rendered("fraud-new", "candidate"): 0.003})
    metrics = [
        AnalysisMetric(name="error-rate", query=QUERY, max=0.01),
        ThresholdMetric(name="drift", query=QUERY, max=0.2),
    ]
    measurements = measure(metrics, *VARIABLES, prometheus)
    assert prometheus.asked == [rendered("fraud-new", "candidate")] * 2
    assert [m.metric for m in measurements] == ["error-rate", "drift"]
    assert all(m.phase == MeasurementPhase.SUCCESSFUL for m in measurements)


def test_a_comparison_without_a_stable_revision_is_inconclusive() -> None:
    prometheus = FakePrometheus({rendered("fraud-new", "candidate"): 0.3})
    metric = AnalysisMetric(name="p99", query=QUERY, compare_to_stable=CompareToStable(max_ratio=1.2))
    (measurement,) = measure([metric], VARIABLES[0], None, prometheus)
    assert measurement.phase == MeasurementPhase.INCONCLUSIVE
    assert "no stable revision to compare with" in measurement.message


def test_a_template_that_cannot_be_rendered_is_inconclusive_and_sends_nothing() -> None:
    prometheus = FakePrometheus({})
    metric = AnalysisMetric(name="bad", query="rate(x[{{revision}}])", max=1.0)
    (measurement,) = measure([metric], *VARIABLES, prometheus)
    assert prometheus.asked == []
    assert measurement.phase == MeasurementPhase.INCONCLUSIVE
    assert measurement.message.startswith("bad: query template: {{revision}} stands outside a quoted string")


def test_measurements_are_counted_by_phase() -> None:
    def count(phase: MeasurementPhase) -> float:
        sample = REGISTRY.get_sample_value("modeldeploy_analysis_measurements_total", {"phase": phase.value})
        return sample or 0.0

    prometheus = FakePrometheus({rendered("fraud-new", "candidate"): 0.5})
    metrics = [
        AnalysisMetric(name="ok", query=QUERY, max=1.0),
        AnalysisMetric(name="bad", query=QUERY, max=0.1),
        AnalysisMetric(name="unknown", query='x{r="{{revision}}"}', max=0.1),
    ]
    phases = [MeasurementPhase.SUCCESSFUL, MeasurementPhase.FAILED, MeasurementPhase.INCONCLUSIVE]
    before = [count(p) for p in phases]
    measure(metrics, *VARIABLES, prometheus)
    assert [count(p) - b for p, b in zip(phases, before, strict=True)] == [1, 1, 1]
