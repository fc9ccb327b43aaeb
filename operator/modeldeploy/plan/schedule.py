"""The one owner of time: what is due now, and when the next thing falls due.

Everything time-based in a rollout is answered here, from ``status`` and the
spec, for a ``now`` handed in (the planner never reads a clock):

- **analysis**: measured on entering an analysed stage, then every
  ``spec.analysis.interval`` after the oldest latest measurement;
- **stage clocks**: a pause, shadow duration or blue-green preview runs from
  ``candidate.stageStartedAt``;
- **fallback checks**: one trigger check per ``fallback.trigger.interval``
  after ``operatorState.fallback.checkedAt``;
- **monitoring**: the stable revision's metrics every ``monitoring.interval``;
- **scale-downs**: a revision the route moved all live traffic away from keeps
  running until ``operatorState.scaleDownAt`` (``strategy.scaleDownDelay``, or
  ``blueGreen.scaleDownDelay`` for a blue-green's former stable);
- **retraining**: not again before ``retrain.cooldown`` has passed.

The Measurer asks :func:`analysis_due`, :func:`monitoring_due` and
:func:`fallback_check_due` before it measures; the planner asks the rest, and
:func:`next_wakeup` for the Plan's ``requeue_after``. Keeping both sides on the
same functions is what keeps "measured when due" and "woken when due" in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from modeldeploy.api import (
    DEFAULT_SCALE_DOWN_DELAY,
    CandidateRevision,
    MetricResult,
    ModelDeploymentSpec,
    OperatorState,
    RetrainStatus,
    parse_duration,
)
from modeldeploy.plan.positions import Position, analysed, position_seconds

ANALYSIS_SAVE_EVERY = timedelta(seconds=30)
"""How old ``status.analysis`` may grow while passing rounds that change nothing are kept unwritten
(:mod:`modeldeploy.reconcile.measure`); the rounds the pool runs meanwhile wake nobody."""

SOONEST_SECONDS = 0.5
"""The shortest requeue: "due now" still lets the writes of this round land first."""


def next_measurement_at(results: Sequence[MetricResult], interval: str) -> datetime | None:
    """When the next round of measurements is due: ``interval`` after the oldest latest measurement.

    None when some result has never been measured (due now) or there are no
    results. ``interval`` is a duration as the spec writes it (``1m``).
    """
    times = [result.measured_at for result in results]
    if not times or None in times:
        return None
    return min(t for t in times if t is not None) + timedelta(seconds=parse_duration(interval))


# --- what is due now (asked before measuring) -----------------------------------------


def analysis_due(spec: ModelDeploymentSpec, results: Sequence[MetricResult], now: datetime) -> bool:
    """Whether the candidate's analysis metrics are to be measured this round."""
    if spec.analysis is None:
        return False
    due = next_measurement_at(results, spec.analysis.interval)
    return due is None or due <= now


def monitoring_due(spec: ModelDeploymentSpec, results: Sequence[MetricResult], now: datetime) -> bool:
    """Whether the stable revision's monitoring metrics are to be measured this round."""
    monitoring = spec.monitoring
    if monitoring is None:
        return False
    names = {m.name for m in monitoring.metrics}
    previous = [r for r in results if r.metric in names]
    due = next_measurement_at(previous, monitoring.interval)
    return len(previous) != len(monitoring.metrics) or due is None or due <= now


def fallback_check_due(spec: ModelDeploymentSpec, state: OperatorState | None, now: datetime) -> bool:
    """Whether a fallback trigger check (metrics, and a healthy/unhealthy count) is due now."""
    due = _fallback_check_at(spec, state)
    return spec.fallback is not None and (due is None or now >= due)


def stage_elapsed(candidate: CandidateRevision, now: datetime) -> float:
    """Seconds since the candidate entered its current stage (0 before it has)."""
    if candidate.stage_started_at is None:
        return 0.0
    return (now - candidate.stage_started_at).total_seconds()


def scale_down_deadline(
    spec: ModelDeploymentSpec, now: datetime, *, former_stable: bool = True
) -> datetime | None:
    """When a revision that just lost all live traffic may be scaled down; None: at once.

    ``strategy.scaleDownDelay`` (30s by default, also without a strategy), or
    for a blue-green's former stable revision ``blueGreen.scaleDownDelay``.
    """
    strategy = spec.strategy
    if strategy is None:
        delay = parse_duration(DEFAULT_SCALE_DOWN_DELAY)
    elif strategy.blue_green is not None and former_stable:
        delay = parse_duration(strategy.blue_green.scale_down_delay)
    else:
        delay = parse_duration(strategy.scale_down_delay)
    if delay <= 0:
        return None
    return (now + timedelta(seconds=delay)).replace(microsecond=0)  # as the wire keeps it


def kept_warm(state: OperatorState, stable: str | None, now: datetime) -> dict[str, datetime]:
    """Revisions the route moved away from, still inside their scale-down delay (requests finish;
    a blue-green's former stable stays for an instant undo)."""
    return {name: when for name, when in state.scale_down_at.items() if when > now and name != stable}


def retrain_cooling_down(spec: ModelDeploymentSpec, last: RetrainStatus | None, now: datetime) -> bool:
    """Whether the last retraining started less than ``retrain.cooldown`` ago."""
    retrain = spec.monitoring.retrain if spec.monitoring else None
    if last is None or retrain is None:
        return False
    return now < last.at + timedelta(seconds=parse_duration(retrain.cooldown))


# --- when to wake next (asked when planning) -----------------------------------------


def next_wakeup(
    spec: ModelDeploymentSpec,
    candidate: CandidateRevision | None,
    analysis: Sequence[MetricResult],
    state: OperatorState,
    watching_stable: bool,
    monitoring: Sequence[MetricResult],
    now: datetime,
    route_wait_ends: datetime | None = None,
    analysis_planned: datetime | None = None,
) -> float | None:
    """Seconds until something time-based falls due: a stage clock ends, a measurement, a
    fallback check, a scale-down; None when nothing is waiting on time.

    ``watching_stable``: a stable revision was serving at the start of this
    round, so its fallback checks and monitoring run. ``route_wait_ends``:
    traffic waits for a first status from a gateway until then. ``analysis_planned``:
    the slow-I/O pool starts the round of analysis due then by itself, and the
    first of its rounds that changes something (or finds status's record
    ANALYSIS_SAVE_EVERY old) wakes the reconcile; the wake-up for that round is
    only a backstop, ANALYSIS_SAVE_EVERY and an interval later.
    """
    times: list[datetime] = [route_wait_ends] if route_wait_ends is not None else []
    if candidate is not None and candidate.stage_started_at is not None:
        position = Position(candidate.stage, candidate.step)
        duration = position_seconds(spec, position)
        if duration:
            times.append(candidate.stage_started_at + timedelta(seconds=duration))
        if analysed(spec, position) and spec.analysis is not None:
            wake = _analysis_wakeup(spec.analysis.interval, analysis, now)
            if wake == analysis_planned:
                wake += ANALYSIS_SAVE_EVERY + timedelta(seconds=parse_duration(spec.analysis.interval))
            times.append(wake)
    times.extend(state.scale_down_at.values())
    if watching_stable:
        if spec.fallback is not None:
            times.append(_fallback_check_at(spec, state) or now)
        if spec.monitoring is not None:
            times.append(_monitoring_wakeup(spec, monitoring, now))
    if not times:
        return None
    return max(SOONEST_SECONDS, (min(times) - now).total_seconds())


def _analysis_wakeup(interval: str, results: Sequence[MetricResult], now: datetime) -> datetime:
    measured = [r.measured_at for r in results if r.measured_at is not None]
    return min(measured) + timedelta(seconds=parse_duration(interval)) if measured else now


def _monitoring_wakeup(spec: ModelDeploymentSpec, results: Sequence[MetricResult], now: datetime) -> datetime:
    assert spec.monitoring is not None
    measured = [r.measured_at for r in results if r.measured_at is not None]
    if not measured or len(measured) < len(spec.monitoring.metrics):
        return now
    return min(measured) + timedelta(seconds=parse_duration(spec.monitoring.interval))


def _fallback_check_at(spec: ModelDeploymentSpec, state: OperatorState | None) -> datetime | None:
    checked = state.fallback.checked_at if state is not None and state.fallback is not None else None
    if spec.fallback is None or checked is None:
        return None
    return checked + timedelta(seconds=parse_duration(spec.fallback.trigger.interval))
