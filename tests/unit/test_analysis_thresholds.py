"""Judging one measurement: bounds, champion/challenger, and missing data that never passes."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from modeldeploy.analysis.metrics import QueryOutcome
from modeldeploy.analysis.prometheus import QueryResult
from modeldeploy.analysis.thresholds import Measurement, judge
from modeldeploy.api import AnalysisMetric, MeasurementPhase, ThresholdMetric

SUCCESSFUL, FAILED, INCONCLUSIVE = (
    MeasurementPhase.SUCCESSFUL,
    MeasurementPhase.FAILED,
    MeasurementPhase.INCONCLUSIVE,
)

EMPTY = QueryResult("q", QueryOutcome.EMPTY, error="no data: empty result")
NAN = QueryResult("q", QueryOutcome.NAN, error="no data: NaN")
DOWN = QueryResult("q", QueryOutcome.ERROR, error="cannot reach Prometheus: [Errno 111] Connection refused")
MISSING = [EMPTY, NAN, DOWN]

FINITE = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)


def value(number: float) -> QueryResult:
    return QueryResult("q", QueryOutcome.SUCCESS, value=number)


def metric(name: str = "error-rate", **bounds: Any) -> AnalysisMetric:
    return AnalysisMetric(name=name, query="q", **bounds)


def ratio(max_ratio: float | None = None, max_diff: float | None = None, **bounds: Any) -> AnalysisMetric:
    compare = {k: v for k, v in {"max_ratio": max_ratio, "max_diff": max_diff}.items() if v is not None}
    return metric("p99-latency", compare_to_stable=compare, **bounds)


@pytest.mark.parametrize(
    ("bounds", "number", "phase", "message"),
    [
        ({"max": 0.01}, 0.003, SUCCESSFUL, "error-rate 0.003 <= max 0.01"),
        ({"max": 0.01}, 0.01, SUCCESSFUL, "error-rate 0.01 <= max 0.01"),
        ({"max": 0.01}, 0.02, FAILED, "error-rate 0.02 > max 0.01"),
        ({"min": 0.9}, 0.95, SUCCESSFUL, "error-rate 0.95 >= min 0.9"),
        ({"min": 0.9}, 0.85, FAILED, "error-rate 0.85 < min 0.9"),
        ({"min": 0.1, "max": 0.2}, 0.15, SUCCESSFUL, "error-rate 0.15 <= max 0.2; 0.15 >= min 0.1"),
        ({"min": 0.1, "max": 0.2}, 0.25, FAILED, "error-rate 0.25 > max 0.2"),
    ],
)
def test_absolute_bounds(
    bounds: dict[str, Any], number: float, phase: MeasurementPhase, message: str
) -> None:
    assert judge(metric(**bounds), value(number)) == Measurement("error-rate", phase, message, number)


@pytest.mark.parametrize("missing", MISSING)
def test_a_missing_candidate_value_is_inconclusive_with_the_reason(missing: QueryResult) -> None:
    measurement = judge(metric(max=0.01), missing)
    assert measurement.phase == INCONCLUSIVE and measurement.value is None
    assert measurement.message == f"error-rate: {missing.error}"


def test_champion_challenger_fails_a_candidate_at_one_and_a_half_times_the_stable() -> None:
    measurement = judge(ratio(1.2, max=1.0), value(0.45), value(0.30))
    assert measurement == Measurement(
        "p99-latency", FAILED, "p99-latency 0.45 > 1.2 x stable 0.3 (maxRatio)", 0.45, 0.30
    )


def test_champion_challenger_passes_within_the_ratio() -> None:
    measurement = judge(ratio(2.0, max=1.0), value(0.45), value(0.30))
    assert measurement.phase == SUCCESSFUL
    assert measurement.message == "p99-latency 0.45 <= max 1; 0.45 <= 2 x stable 0.3 (maxRatio)"


def test_a_candidate_exactly_at_the_ratio_passes_despite_rounding() -> None:
    assert 3 * 0.7 < 2.1  # in binary floating point
    assert judge(ratio(3), value(2.1), value(0.7)).phase == SUCCESSFUL


@pytest.mark.parametrize(
    ("candidate", "stable", "phase"),
    [(0.012, 0.01, SUCCESSFUL), (0.016, 0.01, FAILED), (0.005, 0.01, SUCCESSFUL), (0.0, 0.0, SUCCESSFUL)],
)
def test_max_diff_bounds_the_difference(candidate: float, stable: float, phase: MeasurementPhase) -> None:
    measurement = judge(ratio(max_diff=0.005), value(candidate), value(stable))
    assert measurement.phase == phase
    assert "(maxDiff)" in measurement.message


def test_max_diff_message_shows_the_arithmetic() -> None:
    assert judge(ratio(max_diff=0.005), value(0.02), value(0.01)).message == (
        "p99-latency 0.02 - stable 0.01 = 0.01 > 0.005 (maxDiff)"
    )


@pytest.mark.parametrize("missing", MISSING)
def test_a_missing_stable_value_is_inconclusive(missing: QueryResult) -> None:
    measurement = judge(ratio(1.2, max=1.0), value(0.3), missing)
    assert measurement.phase == INCONCLUSIVE
    assert measurement.message == f"p99-latency 0.3 <= max 1; 0.3 against stable: {missing.error}"


def test_no_stable_revision_is_inconclusive() -> None:
    measurement = judge(ratio(1.2), value(0.3), None)
    assert measurement.phase == INCONCLUSIVE
    assert "no stable revision to compare with" in measurement.message


def test_a_breached_absolute_bound_fails_even_without_a_stable_value() -> None:
    assert judge(ratio(1.2, max=0.2), value(0.3), EMPTY).phase == FAILED


def test_a_ratio_to_a_zero_stable_passes_a_zero_candidate_and_cannot_judge_a_positive_one() -> None:
    assert judge(ratio(1.2), value(0.0), value(0.0)).phase == SUCCESSFUL
    positive = judge(ratio(1.2), value(0.001), value(0.0))
    assert positive.phase == INCONCLUSIVE and "use maxDiff" in positive.message
    assert judge(ratio(1.2), value(0.5), value(-1.0)).phase == INCONCLUSIVE


def test_a_ratio_to_a_zero_stable_still_fails_on_max_diff() -> None:
    assert judge(ratio(1.2, max_diff=0.0001), value(0.001), value(0.0)).phase == FAILED


def test_threshold_metrics_have_no_comparison_and_ignore_a_stable_answer() -> None:
    drift = ThresholdMetric(name="drift-psi", query="q", max=0.2)
    measurement = judge(drift, value(0.1), EMPTY)
    assert measurement.phase == SUCCESSFUL and measurement.stable_value is None


def test_a_measurement_is_never_pending() -> None:
    with pytest.raises(ValueError, match="never Pending"):
        Measurement("m", MeasurementPhase.PENDING, "")


def test_very_long_messages_are_cut_to_what_status_holds() -> None:
    long_error = QueryResult("q", QueryOutcome.ERROR, error="x" * 5000)
    assert len(judge(metric(max=1.0), long_error).message) == 1024


# Properties


BOUNDS = st.fixed_dictionaries(
    {},
    optional={
        "max": FINITE,
        "min": FINITE,
        "compare_to_stable": st.one_of(
            st.fixed_dictionaries({"max_ratio": st.floats(min_value=0.01, max_value=100)}),
            st.fixed_dictionaries({"max_diff": FINITE}),
            st.fixed_dictionaries(
                {"max_ratio": st.floats(min_value=0.01, max_value=100), "max_diff": FINITE}
            ),
        ),
    },
)
ANSWERS = st.one_of(FINITE.map(value), st.sampled_from(MISSING))


def valid_metric(bounds: dict[str, Any]) -> AnalysisMetric:
    assume(bounds)
    assume("min" not in bounds or "max" not in bounds or bounds["min"] <= bounds["max"])
    return metric(**bounds)


@given(BOUNDS, ANSWERS, st.one_of(st.none(), ANSWERS))
def test_a_measurement_is_successful_only_if_every_bound_was_checked_and_held(
    bounds: dict[str, Any], candidate: QueryResult, stable: QueryResult | None
) -> None:
    checked = valid_metric(bounds)
    measurement = judge(checked, candidate, stable)
    assert measurement.message.startswith(checked.name)
    if measurement.phase != SUCCESSFUL:
        return
    v = candidate.value
    assert v is not None and math.isfinite(v)
    tolerance = 1e-9 * max(1.0, abs(v))
    if checked.max is not None:
        assert v <= checked.max + tolerance
    if checked.min is not None:
        assert v >= checked.min - tolerance
    compare = checked.compare_to_stable
    if compare is not None:
        assert stable is not None and stable.value is not None
        s = stable.value
        if compare.max_ratio is not None:
            assert s >= 0 and v <= compare.max_ratio * s + tolerance
        if compare.max_diff is not None:
            assert v - s <= compare.max_diff + tolerance


@given(BOUNDS, st.sampled_from(MISSING), st.one_of(st.none(), ANSWERS))
def test_missing_candidate_data_is_always_inconclusive(
    bounds: dict[str, Any], candidate: QueryResult, stable: QueryResult | None
) -> None:
    assert judge(valid_metric(bounds), candidate, stable).phase == INCONCLUSIVE


@given(FINITE, FINITE, FINITE)
def test_under_a_max_a_smaller_value_never_does_worse(bound: float, a: float, b: float) -> None:
    low, high = sorted((a, b))
    if judge(metric(max=bound), value(high)).phase == SUCCESSFUL:
        assert judge(metric(max=bound), value(low)).phase == SUCCESSFUL


@given(st.floats(min_value=0.01, max_value=100), FINITE, st.sampled_from(MISSING))
def test_a_comparison_without_stable_data_never_succeeds(
    max_ratio: float, v: float, stable: QueryResult
) -> None:
    assert judge(ratio(max_ratio), value(v), stable).phase != SUCCESSFUL
