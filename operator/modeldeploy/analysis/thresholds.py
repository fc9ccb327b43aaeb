"""Judging one measurement: a metric's value (and the stable revision's) against its bounds.

A metric has up to four bounds; each is checked on its own, and the verdict is

- **Failed** when any bound that could be checked was breached: a breach is a
  breach even if another bound lacks data;
- else **Inconclusive** when some bound could not be checked: no candidate
  value, no stable value for ``compareToStable``, or a ratio to a stable value
  of zero or below;
- else **Successful**: every bound was checked and held.

So missing data (empty result, NaN, HTTP or network error, timeout, a template
that cannot be rendered) can never make a metric Successful.

The bounds, for a candidate value ``v`` and a stable value ``s``:

- ``max``: ``v <= max``; ``min``: ``v >= min``;
- ``compareToStable.maxRatio``: ``v <= maxRatio x s``, defined for ``s > 0``.
  When ``s == 0`` a candidate at or below zero is no worse and passes; a
  candidate above zero is infinitely worse in ratio terms, which says nothing
  useful about, say, one error against none: Inconclusive. Metrics that are
  often zero on a healthy stable revision (error rates) should use ``maxDiff``
  or ``max``;
- ``compareToStable.maxDiff``: ``v - s <= maxDiff``.

Comparisons forgive floating-point rounding (``0.36 <= 1.2 x 0.3`` holds).
The message names the metric, the value and the bound, as people read them in
``status.analysis`` and Events: ``error-rate 0.003 <= max 0.01``,
``p99-latency 0.45 > 1.2 x stable 0.3 (maxRatio)``,
``error-rate: no data: empty result``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modeldeploy.analysis.prometheus import QueryResult
from modeldeploy.api import AnalysisMetric, MeasurementPhase, MetricQuery

MAX_MESSAGE_LENGTH = 1024
"""status.analysis[].message holds at most this many characters."""


@dataclass(frozen=True)
class Measurement:
    """The verdict on one metric at one moment, before it is counted into status."""

    metric: str
    phase: MeasurementPhase
    message: str
    value: float | None = None
    stable_value: float | None = None

    def __post_init__(self) -> None:
        if self.phase == MeasurementPhase.PENDING:
            raise ValueError("a measurement is Successful, Failed or Inconclusive, never Pending")


def judge(metric: MetricQuery, candidate: QueryResult, stable: QueryResult | None = None) -> Measurement:
    """The verdict on ``metric`` given the candidate's answer and, for ``compareToStable``, the stable's."""
    compare = metric.compare_to_stable if isinstance(metric, AnalysisMetric) else None
    stable_value = stable.value if stable is not None and compare is not None else None
    value = candidate.value
    if value is None:
        return _measurement(
            metric.name,
            MeasurementPhase.INCONCLUSIVE,
            [f": {candidate.error or 'no value'}"],
            None,
            stable_value,
        )

    held: list[str] = []
    breached: list[str] = []
    unknown: list[str] = []
    if metric.max is not None:
        ok = _at_most(value, metric.max)
        (held if ok else breached).append(f" {_n(value)} {'<=' if ok else '>'} max {_n(metric.max)}")
    if metric.min is not None:
        ok = _at_most(metric.min, value)
        (held if ok else breached).append(f" {_n(value)} {'>=' if ok else '<'} min {_n(metric.min)}")
    if compare is not None:
        if stable_value is None:
            reason = stable.error if stable is not None else "no stable revision to compare with"
            unknown.append(f" {_n(value)} against stable: {reason}")
        else:
            if compare.max_ratio is not None:
                _check_ratio(value, stable_value, compare.max_ratio, held, breached, unknown)
            if compare.max_diff is not None:
                ok = _at_most(value - stable_value, compare.max_diff)
                relation = "<=" if ok else ">"
                (held if ok else breached).append(
                    f" {_n(value)} - stable {_n(stable_value)} = {_n(value - stable_value)} "
                    f"{relation} {_n(compare.max_diff)} (maxDiff)"
                )

    if breached:
        return _measurement(metric.name, MeasurementPhase.FAILED, breached, value, stable_value)
    if unknown:
        return _measurement(metric.name, MeasurementPhase.INCONCLUSIVE, held + unknown, value, stable_value)
    return _measurement(metric.name, MeasurementPhase.SUCCESSFUL, held, value, stable_value)


def _check_ratio(
    value: float, stable: float, ratio: float, held: list[str], breached: list[str], unknown: list[str]
) -> None:
    if stable > 0:
        ok = _at_most(value, ratio * stable)
        (held if ok else breached).append(
            f" {_n(value)} {'<=' if ok else '>'} {_n(ratio)} x stable {_n(stable)} (maxRatio)"
        )
    elif stable == 0 and value <= 0:
        held.append(f" {_n(value)} <= {_n(ratio)} x stable 0 (maxRatio)")
    else:
        unknown.append(
            f" {_n(value)} against stable {_n(stable)}: maxRatio cannot judge a ratio to a stable value "
            "of zero or below (use maxDiff)"
        )


def _at_most(value: float, bound: float) -> bool:
    return value <= bound or math.isclose(value, bound, rel_tol=1e-9, abs_tol=1e-12)


def _n(number: float) -> str:
    """A number as people read it: 0.003, 1.2, 1.5e-06."""
    return f"{number:.6g}"


def _measurement(
    name: str, phase: MeasurementPhase, parts: list[str], value: float | None, stable_value: float | None
) -> Measurement:
    message = name + ";".join(parts)
    if len(message) > MAX_MESSAGE_LENGTH:
        message = message[: MAX_MESSAGE_LENGTH - 3] + "..."
    return Measurement(name, phase, message, value, stable_value)
