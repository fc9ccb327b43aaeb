"""One owner of time: what the Measurer is told is due is what the planner wakes up for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from planner_world import spec

from modeldeploy.api import (
    CandidateRevision,
    FallbackCounters,
    MetricResult,
    OperatorState,
    RetrainOutcome,
    RetrainStatus,
    Stage,
    parse_spec,
)
from modeldeploy.plan.schedule import (
    analysis_due,
    fallback_check_due,
    kept_warm,
    monitoring_due,
    next_wakeup,
    retrain_cooling_down,
    scale_down_deadline,
)

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
METRIC = {"name": "error-rate", "query": "q", "max": 0.01}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def measured(name: str, seconds: float) -> MetricResult:
    return MetricResult(metric=name, phase="Successful", value=0.0, measured_at=at(seconds))


def wakeup(raw: dict[str, Any], now: datetime, **values: Any) -> float | None:
    return next_wakeup(
        parse_spec(raw),
        values.get("candidate"),
        values.get("analysis", ()),
        values.get("state", OperatorState()),
        values.get("watching_stable", True),
        values.get("monitoring", ()),
        now,
        analysis_planned=values.get("analysis_planned"),
    )


def test_monitoring_is_due_exactly_when_the_planner_wakes_up_for_it() -> None:
    raw = spec(monitoring={"interval": "10s", "metrics": [METRIC]})
    results = [measured("error-rate", 0)]
    assert monitoring_due(parse_spec(raw), [], at(0))  # never measured: due at once
    assert not monitoring_due(parse_spec(raw), results, at(5))
    assert wakeup(raw, at(5), monitoring=results) == 5
    assert monitoring_due(parse_spec(raw), results, at(10))


def test_a_fallback_check_is_due_one_interval_after_the_last_and_the_planner_wakes_for_it() -> None:
    raw = spec(fallback={"mode": "PreviousRevision", "trigger": {"interval": "10s"}})
    state = OperatorState(fallback=FallbackCounters(checked_at=at(0)))
    assert fallback_check_due(parse_spec(raw), OperatorState(), at(0))  # never checked
    assert not fallback_check_due(parse_spec(raw), state, at(9))
    assert wakeup(raw, at(3), state=state) == 7
    assert fallback_check_due(parse_spec(raw), state, at(10))
    assert wakeup(raw, at(3), state=state, watching_stable=False) is None  # nothing serves yet


def analysed_canary() -> tuple[dict[str, Any], CandidateRevision]:
    """A canary step of 1 m with analysis every 10 s, entered at 0 s."""
    raw = spec(
        strategy={"canary": {"steps": [{"weight": 10, "pause": "1m"}]}},
        analysis={"interval": "10s", "metrics": [METRIC]},
    )
    candidate = CandidateRevision(
        revision="r", version="2", stage=Stage.CANARY, step=0, weight=10, stage_started_at=at(0)
    )
    return raw, candidate


def test_analysis_is_due_one_interval_after_the_oldest_measurement_and_so_is_the_wakeup() -> None:
    raw, candidate = analysed_canary()
    results = [measured("error-rate", 20)]
    assert not analysis_due(parse_spec(raw), results, at(25))
    assert wakeup(raw, at(25), candidate=candidate, analysis=results, watching_stable=False) == 5
    assert analysis_due(parse_spec(raw), results, at(30))
    # the pause ends at 60 s: with the analysis measured at 55 s, the pause is next
    late = [measured("error-rate", 55)]
    assert wakeup(raw, at(58), candidate=candidate, analysis=late, watching_stable=False) == 2


def test_a_round_the_pool_starts_by_itself_is_woken_for_only_as_a_backstop_after_the_save_and_a_round() -> (
    None
):
    """The pool's rounds wake the reconcile when one changes something or status's record is
    ANALYSIS_SAVE_EVERY old; the planner's own wake-up is a backstop after that."""
    raw, candidate = analysed_canary()
    results = [measured("error-rate", 20)]
    common: dict[str, Any] = {"candidate": candidate, "analysis": results, "watching_stable": False}
    # the step's pause ends at 60 s, before the backstop at 30 + 30 + 10 s
    assert wakeup(raw, at(25), analysis_planned=at(30), **common) == 35
    long_step = {"canary": {"steps": [{"weight": 10, "pause": "10m"}]}}
    assert wakeup({**raw, "strategy": long_step}, at(25), analysis_planned=at(30), **common) == 45
    # planned for another round (the results moved on since): the wake-up is the round's own
    assert wakeup(raw, at(25), analysis_planned=at(20), **common) == 5
    # the stage's own clock still wakes it on time
    common["analysis"] = [measured("error-rate", 52)]
    assert wakeup(raw, at(55), analysis_planned=at(62), **common) == 5


def test_a_blue_green_stable_stays_warm_until_its_deadline_and_the_planner_wakes_then() -> None:
    raw = spec(strategy={"blueGreen": {"scaleDownDelay": "5m"}})
    deadline = scale_down_deadline(parse_spec(raw), at(0))
    assert deadline == at(300)
    assert scale_down_deadline(parse_spec(spec()), at(0)) == at(30)  # the default, also without a strategy
    zero = spec(strategy={"scaleDownDelay": "0s"})
    assert scale_down_deadline(parse_spec(zero), at(0)) is None  # no delay: at once
    # a blue-green's former stable waits blueGreen's delay; a candidate it rolled back, the strategy's
    both = spec(strategy={"blueGreen": {"scaleDownDelay": "5m"}, "scaleDownDelay": "45s"})
    assert scale_down_deadline(parse_spec(both), at(0)) == at(300)
    assert scale_down_deadline(parse_spec(both), at(0), former_stable=False) == at(45)
    # whole seconds, as status keeps it: the wakeup computed now and the one after a restart agree
    assert scale_down_deadline(parse_spec(raw), at(0.5)) == at(300)
    state = OperatorState(scale_down_at={"old": deadline})
    assert kept_warm(state, "new", at(299)) == {"old": deadline}
    assert kept_warm(state, "new", at(300)) == {}
    assert kept_warm(state, "old", at(10)) == {}  # the stable revision is never "kept warm"
    assert wakeup(raw, at(100), state=state, watching_stable=False) == 200


def test_a_retraining_is_not_started_again_inside_its_cooldown() -> None:
    raw = spec(
        monitoring={
            "metrics": [METRIC],
            "retrain": {"webhook": {"url": "http://127.0.0.1:9/h"}, "cooldown": "1h"},
        }
    )
    last = RetrainStatus(outcome=RetrainOutcome.SUCCEEDED, at=at(0), metric="error-rate")
    assert retrain_cooling_down(parse_spec(raw), last, at(3599))
    assert not retrain_cooling_down(parse_spec(raw), last, at(3600))
    assert not retrain_cooling_down(parse_spec(raw), None, at(0))
