"""From measurements to a decision: counting them into status, and what a stage should do next.

Each interval the runner produces one :class:`Measurement` per metric.
:func:`advance` folds it into the metric's :class:`MetricResult` in
``status.analysis``, keeping two counters:

- ``failures``: Failed measurements **in this stage** (cumulative; a later
  success does not erase a failure). A new stage or canary step starts from
  fresh results (:func:`pending_results`).
- ``inconclusive``: Inconclusive measurements **in a row** (any conclusive
  measurement resets it).

:func:`stage_verdict` then reads the results, in this order of precedence:

1. **Fail** (reason ``MetricFailed``): some metric has ``failures >=
   failureLimit``. Roll back; the message names the metric, value and bound.
2. **RollbackInconclusive** (``InconclusiveLimitReached``): some metric has
   ``inconclusive >= inconclusiveLimit`` and ``onInconclusive`` is Rollback.
3. **Hold**: do not advance, keep measuring. Reasons, most serious first:
   ``InconclusiveLimitReached`` (limit reached, onInconclusive Hold: waits until
   data returns), ``MeasurementFailed`` (latest measurement Failed, below the
   failure limit), ``MeasurementInconclusive`` (latest Inconclusive, below the
   inconclusive limit).
4. **Pending** (``AnalysisPending``): a metric has no measurement yet, or no
   results at all were given.
5. **Pass** (``AnalysisPassed``): every metric's latest measurement is
   Successful and none reached a limit.

Pass means only "the metrics allow advancing now"; whether the stage has lasted
long enough (pause, shadow duration, preview) is the planner's business, and
the planner's schedule (:mod:`modeldeploy.plan.schedule`) says when the next round is due. Rule 4
of the design holds by construction: an Inconclusive latest measurement is never
Pass, and an empty list of results is Pending, never a vacuous Pass.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

from modeldeploy.analysis.thresholds import MAX_MESSAGE_LENGTH, Measurement, judge
from modeldeploy.api import Analysis, InconclusivePolicy, MeasurementPhase, MetricResult, Verdict, VerdictKind

__all__ = [
    "Measurement",
    "Verdict",
    "VerdictKind",
    "advance",
    "analysis_verdict",
    "judge",
    "pending_results",
    "record",
    "stage_verdict",
]


def pending_results(metric_names: Iterable[str]) -> list[MetricResult]:
    """Fresh results for the start of a stage or step: Pending, counters at zero."""
    return [MetricResult(metric=name, phase=MeasurementPhase.PENDING) for name in metric_names]


def advance(
    previous: MetricResult | None,
    measurement: Measurement,
    now: datetime,
    *,
    consecutive_failures: bool = False,
) -> MetricResult:
    """``previous`` (None at the start of a stage) updated with ``measurement`` taken at ``now``.

    ``failures`` counts Failed measurements in the stage; with
    ``consecutive_failures=True`` (fallback triggers, monitoring) it counts them
    in a row instead. ``inconclusive`` always counts in a row.
    """
    if previous is not None and previous.metric != measurement.metric:
        raise ValueError(f"result of {previous.metric} cannot take a measurement of {measurement.metric}")
    failures = previous.failures if previous is not None else 0
    inconclusive = previous.inconclusive if previous is not None else 0
    if measurement.phase == MeasurementPhase.FAILED:
        failures += 1
    elif consecutive_failures:
        failures = 0
    inconclusive = inconclusive + 1 if measurement.phase == MeasurementPhase.INCONCLUSIVE else 0
    return MetricResult(
        metric=measurement.metric,
        phase=measurement.phase,
        value=measurement.value,
        stable_value=measurement.stable_value,
        failures=failures,
        inconclusive=inconclusive,
        measured_at=now,
        message=measurement.message[:MAX_MESSAGE_LENGTH],
    )


def record(
    previous: Sequence[MetricResult],
    measurements: Sequence[Measurement],
    now: datetime,
    *,
    consecutive_failures: bool = False,
) -> list[MetricResult]:
    """The new ``status.analysis``: each measurement folded into the previous result of its metric.

    Results are in the order of ``measurements``; results of metrics that were
    not measured (removed from the spec) are dropped.
    """
    by_name = {result.metric: result for result in previous}
    return [
        advance(by_name.get(measurement.metric), measurement, now, consecutive_failures=consecutive_failures)
        for measurement in measurements
    ]


def analysis_verdict(analysis: Analysis, results: Sequence[MetricResult]) -> Verdict:
    """:func:`stage_verdict` with the limits and metric names of ``spec.analysis``.

    Results of metrics no longer in the spec are ignored; metrics without a
    result make the verdict Pending.
    """
    names = [metric.name for metric in analysis.metrics]
    return stage_verdict(
        [result for result in results if result.metric in names],
        failure_limit=analysis.failure_limit,
        inconclusive_limit=analysis.inconclusive_limit,
        on_inconclusive=analysis.on_inconclusive,
        expected=names,
    )


def stage_verdict(
    results: Sequence[MetricResult],
    failure_limit: int,
    inconclusive_limit: int,
    on_inconclusive: InconclusivePolicy,
    expected: Collection[str] = (),
) -> Verdict:
    """What the results say the stage should do; see the module docstring for the exact rules.

    ``expected`` names metrics that must have a result; a missing one is Pending.
    """
    failed = [r for r in results if r.failures >= failure_limit]
    if failed:
        first = failed[0]
        counts = f"{first.failures} failed measurement(s) in this stage, failureLimit {failure_limit}"
        if first.phase == MeasurementPhase.FAILED:
            message = f"{_describe(first)} ({counts})"
        else:  # the limit was lowered after the failures; the latest measurement is not the culprit
            message = f"{first.metric}: {counts}; latest: {_describe(first)}"
        return _verdict(VerdictKind.FAIL, "MetricFailed", message, failed)
    stuck = [r for r in results if r.inconclusive >= inconclusive_limit]
    if stuck:
        first = stuck[0]
        rollback = on_inconclusive == InconclusivePolicy.ROLLBACK
        return _verdict(
            VerdictKind.ROLLBACK_INCONCLUSIVE if rollback else VerdictKind.HOLD,
            "InconclusiveLimitReached",
            f"{_describe(first)} ({first.inconclusive} inconclusive in a row, "
            f"inconclusiveLimit {inconclusive_limit}, onInconclusive {on_inconclusive.value})",
            stuck,
        )
    failing = [r for r in results if r.phase == MeasurementPhase.FAILED]
    if failing:
        first = failing[0]
        counts = f"{first.failures} failed, failureLimit {failure_limit}"
        message = f"{_describe(first)} ({counts}); measuring again"
        return _verdict(VerdictKind.HOLD, "MeasurementFailed", message, failing)
    unsure = [r for r in results if r.phase == MeasurementPhase.INCONCLUSIVE]
    if unsure:
        first = unsure[0]
        message = (
            f"{_describe(first)} ({first.inconclusive} inconclusive in a row, "
            f"inconclusiveLimit {inconclusive_limit}); measuring again"
        )
        return _verdict(VerdictKind.HOLD, "MeasurementInconclusive", message, unsure)

    measured = {r.metric for r in results if r.phase != MeasurementPhase.PENDING}
    waiting = [r.metric for r in results if r.phase == MeasurementPhase.PENDING]
    waiting += [name for name in expected if name not in measured and name not in waiting]
    if waiting or not results:
        names = ", ".join(waiting) if waiting else "any metric"
        return Verdict(VerdictKind.PENDING, "AnalysisPending", f"waiting for a first measurement of {names}")
    summary = "; ".join(r.message or r.metric for r in results)
    message = _cut(f"all {len(results)} metric(s) passed: {summary}")
    return Verdict(VerdictKind.PASS, "AnalysisPassed", message)


def _describe(result: MetricResult) -> str:
    """The metric and its latest measurement, e.g. ``error-rate 0.02 > max 0.01``."""
    return result.message or f"{result.metric} {result.phase.value}"


def _verdict(kind: VerdictKind, reason: str, message: str, culprits: Sequence[MetricResult]) -> Verdict:
    if len(culprits) > 1:
        message += f" (and {len(culprits) - 1} more metric(s))"
    return Verdict(kind, reason, _cut(message), culprits[0].metric)


def _cut(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_LENGTH else message[: MAX_MESSAGE_LENGTH - 3] + "..."
