"""Counting measurements into status and deciding a stage: Fail, Rollback, Hold, Pending, Pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modeldeploy.analysis.verdicts import (
    Measurement,
    Verdict,
    VerdictKind,
    advance,
    analysis_verdict,
    pending_results,
    record,
    stage_verdict,
)
from modeldeploy.api import Analysis, InconclusivePolicy, MeasurementPhase, MetricResult
from modeldeploy.plan.schedule import next_measurement_at

SUCCESSFUL, FAILED, INCONCLUSIVE, PENDING = (
    MeasurementPhase.SUCCESSFUL,
    MeasurementPhase.FAILED,
    MeasurementPhase.INCONCLUSIVE,
    MeasurementPhase.PENDING,
)
HOLD, ROLLBACK = InconclusivePolicy.HOLD, InconclusivePolicy.ROLLBACK
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

MESSAGES = {
    SUCCESSFUL: "{m} 0.003 <= max 0.01",
    FAILED: "{m} 0.02 > max 0.01",
    INCONCLUSIVE: "{m}: no data: empty result",
}


def measured(phase: MeasurementPhase, metric: str = "error-rate") -> Measurement:
    values = {SUCCESSFUL: 0.003, FAILED: 0.02, INCONCLUSIVE: None}
    return Measurement(metric, phase, MESSAGES[phase].format(m=metric), values[phase])


def result(
    metric: str = "error-rate", phase: MeasurementPhase = SUCCESSFUL, failures: int = 0, inconclusive: int = 0
) -> MetricResult:
    message = MESSAGES[phase].format(m=metric) if phase != PENDING else None
    return MetricResult(
        metric=metric, phase=phase, failures=failures, inconclusive=inconclusive, message=message
    )


def verdict(
    *results: MetricResult, policy: InconclusivePolicy = HOLD, expected: tuple[str, ...] = ()
) -> Verdict:
    return stage_verdict(list(results), 2, 3, policy, expected)


def run(phases: list[MeasurementPhase], *, consecutive: bool = False) -> MetricResult | None:
    current: MetricResult | None = None
    for minute, phase in enumerate(phases):
        current = advance(
            current, measured(phase), T0 + timedelta(minutes=minute), consecutive_failures=consecutive
        )
    return current


# advance and record


def test_advance_copies_the_measurement_and_its_time() -> None:
    new = advance(
        None, Measurement("p99", SUCCESSFUL, "p99 0.4 <= 1.2 x stable 0.5 (maxRatio)", 0.4, 0.5), T0
    )
    assert new == MetricResult(
        metric="p99",
        phase=SUCCESSFUL,
        value=0.4,
        stable_value=0.5,
        failures=0,
        inconclusive=0,
        measured_at=T0,
        message="p99 0.4 <= 1.2 x stable 0.5 (maxRatio)",
    )


def test_failures_accumulate_over_the_stage_and_are_not_erased_by_a_success() -> None:
    final = run([FAILED, SUCCESSFUL, INCONCLUSIVE, FAILED, SUCCESSFUL])
    assert final is not None and final.failures == 2


def test_inconclusive_counts_only_the_current_run() -> None:
    final = run([INCONCLUSIVE, INCONCLUSIVE, SUCCESSFUL, INCONCLUSIVE, INCONCLUSIVE])
    assert final is not None and final.inconclusive == 2
    after_failure = run([INCONCLUSIVE, FAILED])
    assert after_failure is not None and after_failure.inconclusive == 0


def test_consecutive_failures_reset_on_any_other_measurement() -> None:
    final = run([FAILED, FAILED, INCONCLUSIVE, FAILED], consecutive=True)
    assert final is not None and final.failures == 1


def test_a_result_takes_only_measurements_of_its_own_metric() -> None:
    with pytest.raises(ValueError, match="error-rate cannot take a measurement of p99"):
        advance(result("error-rate"), measured(SUCCESSFUL, "p99"), T0)


def test_record_matches_by_name_keeps_measurement_order_and_drops_removed_metrics() -> None:
    previous = [result("a", FAILED, failures=1), result("gone"), result("b", INCONCLUSIVE, inconclusive=2)]
    new = record(
        previous, [measured(INCONCLUSIVE, "b"), measured(FAILED, "a"), measured(SUCCESSFUL, "c")], T0
    )
    assert [(r.metric, r.failures, r.inconclusive) for r in new] == [("b", 0, 3), ("a", 2, 0), ("c", 0, 0)]


def test_a_stage_starts_with_pending_results_at_zero() -> None:
    assert pending_results(["a", "b"]) == [result("a", PENDING), result("b", PENDING)]


def test_the_next_round_is_due_one_interval_after_the_oldest_measurement() -> None:
    old = advance(None, measured(SUCCESSFUL, "a"), T0)
    new = advance(None, measured(SUCCESSFUL, "b"), T0 + timedelta(seconds=20))
    assert next_measurement_at([new, old], "1m") == T0 + timedelta(minutes=1)
    assert next_measurement_at([new, result("c", PENDING)], "1m") is None
    assert next_measurement_at([], "1m") is None


# stage_verdict: one rule each


def test_all_latest_measurements_successful_is_pass() -> None:
    decided = verdict(result("error-rate"), result("p99"))
    assert (decided.kind, decided.reason, decided.passed, decided.rollback) == (
        VerdictKind.PASS,
        "AnalysisPassed",
        True,
        False,
    )
    assert decided.message == "all 2 metric(s) passed: error-rate 0.003 <= max 0.01; p99 0.003 <= max 0.01"


def test_reaching_the_failure_limit_fails_naming_metric_value_and_bound() -> None:
    decided = verdict(result("p99"), result("error-rate", FAILED, failures=2))
    assert decided == Verdict(
        VerdictKind.FAIL,
        "MetricFailed",
        "error-rate 0.02 > max 0.01 (2 failed measurement(s) in this stage, failureLimit 2)",
        "error-rate",
    )
    assert decided.rollback


def test_a_failure_below_the_limit_holds() -> None:
    decided = verdict(result("error-rate", FAILED, failures=1))
    assert (decided.kind, decided.reason, decided.metric) == (
        VerdictKind.HOLD,
        "MeasurementFailed",
        "error-rate",
    )
    assert decided.message == "error-rate 0.02 > max 0.01 (1 failed, failureLimit 2); measuring again"


def test_earlier_failures_below_the_limit_do_not_block_a_pass() -> None:
    assert verdict(result("error-rate", SUCCESSFUL, failures=1)).kind == VerdictKind.PASS


def test_failures_at_the_limit_fail_even_if_the_latest_measurement_passed() -> None:
    decided = verdict(result("error-rate", SUCCESSFUL, failures=2))
    assert decided.kind == VerdictKind.FAIL
    assert decided.message.startswith(
        "error-rate: 2 failed measurement(s) in this stage, failureLimit 2; latest:"
    )


def test_inconclusive_below_the_limit_holds() -> None:
    decided = verdict(result("error-rate", INCONCLUSIVE, inconclusive=2), policy=ROLLBACK)
    assert (decided.kind, decided.reason) == (VerdictKind.HOLD, "MeasurementInconclusive")


def test_inconclusive_limit_with_hold_holds() -> None:
    decided = verdict(result("error-rate", INCONCLUSIVE, inconclusive=3), policy=HOLD)
    assert (decided.kind, decided.reason, decided.rollback) == (
        VerdictKind.HOLD,
        "InconclusiveLimitReached",
        False,
    )
    assert decided.message == (
        "error-rate: no data: empty result "
        "(3 inconclusive in a row, inconclusiveLimit 3, onInconclusive Hold)"
    )


def test_inconclusive_limit_with_rollback_rolls_back() -> None:
    decided = verdict(result("error-rate", INCONCLUSIVE, inconclusive=3), policy=ROLLBACK)
    assert (decided.kind, decided.reason, decided.rollback) == (
        VerdictKind.ROLLBACK_INCONCLUSIVE,
        "InconclusiveLimitReached",
        True,
    )


def test_no_results_or_a_missing_metric_is_pending() -> None:
    assert verdict().kind == VerdictKind.PENDING
    decided = verdict(result("error-rate"), expected=("error-rate", "p99"))
    assert (decided.kind, decided.message) == (VerdictKind.PENDING, "waiting for a first measurement of p99")
    assert verdict(result("error-rate"), result("p99", PENDING)).kind == VerdictKind.PENDING


def test_failure_wins_over_everything_and_rollback_over_holding() -> None:
    stuck = result("a", INCONCLUSIVE, inconclusive=3)
    failed = result("b", FAILED, failures=2)
    assert verdict(stuck, failed, result("c", PENDING), policy=ROLLBACK).kind == VerdictKind.FAIL
    assert (
        verdict(result("b", FAILED, failures=1), stuck, policy=ROLLBACK).kind
        == VerdictKind.ROLLBACK_INCONCLUSIVE
    )
    assert verdict(result("c", PENDING), result("d", INCONCLUSIVE, inconclusive=1)).kind == VerdictKind.HOLD


def test_several_culprits_are_counted_in_the_message() -> None:
    decided = verdict(result("a", FAILED, failures=2), result("b", FAILED, failures=3))
    assert decided.metric == "a" and decided.message.endswith("(and 1 more metric(s))")


def test_analysis_verdict_uses_the_specs_limits_and_metric_names() -> None:
    analysis = Analysis.model_validate(
        {
            "failureLimit": 1,
            "inconclusiveLimit": 1,
            "onInconclusive": "Rollback",
            "metrics": [
                {"name": "error-rate", "query": "q", "max": 0.01},
                {"name": "p99", "query": "q", "max": 1.0},
            ],
        }
    )
    removed_from_spec = result("old-metric", FAILED, failures=9)
    assert analysis_verdict(analysis, [result("error-rate"), removed_from_spec]).kind == VerdictKind.PENDING
    assert analysis_verdict(analysis, [result("error-rate"), result("p99")]).kind == VerdictKind.PASS
    assert (
        analysis_verdict(analysis, [result("error-rate", FAILED, failures=1), result("p99")]).kind
        == VerdictKind.FAIL
    )
    stuck = result("p99", INCONCLUSIVE, inconclusive=1)
    assert analysis_verdict(analysis, [result("error-rate"), stuck]).kind == VerdictKind.ROLLBACK_INCONCLUSIVE


# Properties

PHASES = st.sampled_from([PENDING, SUCCESSFUL, FAILED, INCONCLUSIVE])
NAMES = ["a", "b", "c", "d"]


@st.composite
def result_sets(draw: st.DrawFn) -> list[MetricResult]:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=4))
    return [
        result(
            name,
            draw(PHASES),
            failures=draw(st.integers(min_value=0, max_value=4)),
            inconclusive=draw(st.integers(min_value=0, max_value=4)),
        )
        for name in names
    ]


LIMITS = st.integers(min_value=1, max_value=4)
POLICIES = st.sampled_from([HOLD, ROLLBACK])


@given(result_sets(), LIMITS, LIMITS, POLICIES)
def test_pass_exactly_when_every_latest_measurement_succeeded_and_no_limit_was_reached(
    results: list[MetricResult], failure_limit: int, inconclusive_limit: int, policy: InconclusivePolicy
) -> None:
    decided = stage_verdict(results, failure_limit, inconclusive_limit, policy)
    expected_pass = (
        bool(results)
        and all(r.phase == SUCCESSFUL for r in results)
        and all(r.failures < failure_limit and r.inconclusive < inconclusive_limit for r in results)
    )
    assert decided.passed == expected_pass


@given(result_sets(), LIMITS, LIMITS, POLICIES)
def test_an_inconclusive_latest_measurement_never_passes(
    results: list[MetricResult], failure_limit: int, inconclusive_limit: int, policy: InconclusivePolicy
) -> None:
    if any(r.phase == INCONCLUSIVE for r in results):
        assert stage_verdict(results, failure_limit, inconclusive_limit, policy).kind != VerdictKind.PASS


@given(result_sets(), LIMITS, LIMITS, POLICIES)
def test_reaching_the_failure_limit_always_fails(
    results: list[MetricResult], failure_limit: int, inconclusive_limit: int, policy: InconclusivePolicy
) -> None:
    decided = stage_verdict(results, failure_limit, inconclusive_limit, policy)
    assert (decided.kind == VerdictKind.FAIL) == any(r.failures >= failure_limit for r in results)


@given(result_sets(), LIMITS, LIMITS)
def test_hold_policy_never_rolls_back_on_inconclusive(
    results: list[MetricResult], failure_limit: int, inconclusive_limit: int
) -> None:
    assert (
        stage_verdict(results, failure_limit, inconclusive_limit, HOLD).kind
        != VerdictKind.ROLLBACK_INCONCLUSIVE
    )


@given(result_sets(), LIMITS, LIMITS, POLICIES, st.randoms(use_true_random=False))
def test_the_kind_of_verdict_does_not_depend_on_the_order_of_metrics(
    results: list[MetricResult],
    failure_limit: int,
    inconclusive_limit: int,
    policy: InconclusivePolicy,
    rng: Random,
) -> None:
    shuffled = list(results)
    rng.shuffle(shuffled)
    assert (
        stage_verdict(results, failure_limit, inconclusive_limit, policy).kind
        == stage_verdict(shuffled, failure_limit, inconclusive_limit, policy).kind
    )


@given(st.lists(st.sampled_from([SUCCESSFUL, FAILED, INCONCLUSIVE]), min_size=1, max_size=20))
def test_counters_follow_the_sequence_of_measurements(phases: list[MeasurementPhase]) -> None:
    final = run(phases)
    assert final is not None
    last_conclusive = max((i + 1 for i, phase in enumerate(phases) if phase != INCONCLUSIVE), default=0)
    trailing_inconclusive = len(phases) - last_conclusive
    assert final.failures == phases.count(FAILED)
    assert final.inconclusive == trailing_inconclusive
    assert final.phase == phases[-1]
    assert final.measured_at == T0 + timedelta(minutes=len(phases) - 1)


@given(
    st.lists(st.sampled_from([SUCCESSFUL, FAILED, INCONCLUSIVE]), min_size=1, max_size=20), LIMITS, POLICIES
)
def test_a_stage_whose_last_measurement_was_not_successful_never_passes(
    phases: list[MeasurementPhase], limit: int, policy: InconclusivePolicy
) -> None:
    final = run(phases)
    assert final is not None
    decided = stage_verdict([final], limit, limit, policy)
    assert decided.passed == (phases[-1] == SUCCESSFUL and phases.count(FAILED) < limit)
