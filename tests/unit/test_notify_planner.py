"""Notices from the planner: made from its decisions, once per transition, keyed in status."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from planner_world import World, spec

from modeldeploy.api import MeasurementPhase, MetricResult, Verdict, VerdictKind
from modeldeploy.plan.inputs import Inputs
from modeldeploy.plan.outputs import Notice

TEAM = frozenset({"team"})
PASS = Inputs(
    verdict=Verdict(VerdictKind.PASS, "AnalysisPassed", "all metrics pass"), notification_targets=TEAM
)
PENDING = Inputs(
    verdict=Verdict(VerdictKind.PENDING, "AnalysisPending", "not measured yet"), notification_targets=TEAM
)
HOLD = Inputs(
    verdict=Verdict(VerdictKind.HOLD, "MeasurementInconclusive", "error-rate: no data", "error-rate"),
    notification_targets=TEAM,
)
FAIL = Inputs(
    verdict=Verdict(VerdictKind.FAIL, "MetricFailed", "error-rate 0.2 > max 0.01", "error-rate"),
    analysis=(MetricResult(metric="error-rate", phase=MeasurementPhase.FAILED, value=0.2, failures=2),),
    notification_targets=TEAM,
)
ANALYSIS = {"interval": "10s", "metrics": [{"name": "error-rate", "query": "up", "max": 0.01}]}
CANARY = {"canary": {"steps": [{"weight": 10, "pause": "30s"}, {"weight": 50, "pause": "30s"}]}}
EVERYTHING = [
    "RolloutStarted",
    "StageEntered",
    "Promoted",
    "RolledBack",
    "Aborted",
    "AnalysisInconclusive",
    "FallbackActivated",
    "FallbackRecovered",
    "DriftDetected",
    "ModelDegraded",
    "RetrainStarted",
    "RetrainFinished",
]


def world_with(notifications: list[dict[str, Any]], inputs: Inputs = PENDING) -> World:
    world = World(spec("1.0.0", replicas=2, strategy=CANARY, analysis=ANALYSIS, notifications=notifications))
    world.reconcile(inputs=inputs)
    world.ready_all()
    world.settle(inputs=inputs)
    assert world.status["phase"] == "Stable"
    return world


def notices(world: World) -> list[Notice]:
    return [n for decided in world.log for n in decided.notices]


def roll(world: World, inputs: Inputs, rounds: int = 12, seconds: float = 31) -> None:
    world.edit(model={"name": "fraud-detector", "version": "2.0.0"})
    for _ in range(rounds):
        world.ready_all()
        world.reconcile(seconds, inputs)


def test_a_promoted_canary_makes_each_notice_once_for_the_subscribed_target() -> None:
    world = world_with([{"events": EVERYTHING, "target": "team"}], PASS)
    before = len(notices(world))
    roll(world, PASS)
    assert world.status["phase"] == "Stable" and world.status["stable"]["version"] == "2.0.0"
    made = notices(world)[before:]
    assert Counter(n.event.value for n in made) == {"RolloutStarted": 1, "StageEntered": 2, "Promoted": 1}
    promoted = next(n for n in made if n.event.value == "Promoted")
    assert (promoted.version, promoted.stable_version, promoted.targets) == ("2.0.0", "1.0.0", ("team",))
    stages = [n.stage for n in made if n.event.value == "StageEntered"]
    assert stages == ["canary step 1/2 at 10%", "canary step 2/2 at 50%"]
    keys = [n.key for n in made]
    assert len(set(keys)) == len(keys)
    assert set(keys) <= set(world.status["operatorState"]["notified"])


def test_a_rollback_names_the_metric_value_and_threshold() -> None:
    world = world_with([{"events": ["RolledBack"], "target": "team"}], replace(PENDING, cloud_events=True))
    before = len(notices(world))
    world.edit(model={"name": "fraud-detector", "version": "2.0.0"})
    for _ in range(4):
        world.ready_all()
        world.reconcile(1, replace(PENDING, cloud_events=True))
    world.reconcile(1, replace(FAIL, cloud_events=True))
    assert world.status["phase"] == "RolledBack"
    for _ in range(5):
        world.reconcile(30, replace(FAIL, cloud_events=True))
    made = notices(world)[before:]
    rolled = [n for n in made if n.event.value == "RolledBack"]
    assert len(rolled) == 1
    notice = rolled[0]
    assert (notice.metric, notice.value, notice.threshold) == ("error-rate", 0.2, "max 0.01")
    assert (notice.version, notice.stable_version, notice.stage) == (
        "2.0.0",
        "1.0.0",
        "canary step 1/2 at 10%",
    )
    assert notice.targets == ("team",)
    # Events nobody subscribed to are still made for the CloudEvents sink, without targets.
    assert [n.event.value for n in made] == ["RolloutStarted", "StageEntered", "RolledBack"]
    assert all(n.targets == () for n in made if n.event.value != "RolledBack")


def test_nothing_is_made_or_written_when_nobody_listens() -> None:
    world = world_with([], PASS)
    roll(world, PASS)
    assert notices(world) == [] and "notified" not in world.status["operatorState"]


def test_a_held_stage_notifies_once_however_long_it_holds() -> None:
    world = world_with([{"events": ["AnalysisInconclusive"], "target": "team"}])
    before = len(notices(world))
    roll(world, HOLD, rounds=30, seconds=60)
    held = [n for n in notices(world)[before:] if n.event.value == "AnalysisInconclusive"]
    assert len(held) == 1
    assert held[0].metric == "error-rate" and held[0].value is None and "no data" in held[0].summary


def test_a_restarted_operator_planning_from_the_written_status_makes_no_notice_again() -> None:
    """The key goes into status with the transition; a status write that never happened sends nothing."""
    world = world_with([{"events": ["AnalysisInconclusive"], "target": "team"}])
    roll(world, HOLD, rounds=6, seconds=60)
    sent = [n for n in notices(world) if n.event.value == "AnalysisInconclusive"]
    assert len(sent) == 1
    assert sent[0].key in world.status["operatorState"]["notified"]
    # A fresh planner (a restarted operator) reads only status: the same hold makes nothing.
    again = world.reconcile(60, HOLD)
    assert [n for n in again.notices if n.event.value == "AnalysisInconclusive"] == []


def test_an_unknown_target_is_refused_by_a_condition_and_the_rollout_goes_on() -> None:
    world = world_with([{"events": ["Promoted"], "target": "nobody"}], PASS)
    condition = next(c for c in world.status["conditions"] if c["type"] == "NotificationsRefused")
    assert condition["status"] == "True"
    assert "'nobody'" in condition["message"] and "namespace 'risk'" in condition["message"]
    roll(world, PASS)
    assert world.status["stable"]["version"] == "2.0.0"
    assert notices(world) == []  # refused, and no sink: nothing to send


def test_without_subscriptions_no_condition_is_added() -> None:
    world = world_with([], PASS)
    assert all(c["type"] != "NotificationsRefused" for c in world.status["conditions"])


def test_no_targets_configured_refuses_every_subscription() -> None:
    world = world_with([{"events": ["Promoted"], "target": "team"}], replace(PASS, notification_targets=None))
    condition = next(c for c in world.status["conditions"] if c["type"] == "NotificationsRefused")
    assert condition["status"] == "True"
