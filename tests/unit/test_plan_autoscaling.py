"""Autoscaling as a specification: one HPA per live revision, a count the operator never writes,
and a candidate whose capacity follows its traffic share of the stable revision's current size."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from planner_world import NAME, World, spec

from modeldeploy.api import Stage, parse_spec
from modeldeploy.plan.planner import plan
from modeldeploy.plan.positions import Position
from modeldeploy.plan.sizing import candidate_bounds, needed_for

SCALING: dict[str, Any] = {
    "minReplicas": 2,
    "maxReplicas": 20,
    "metrics": [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
        }
    ],
    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}},
}
V2 = {"name": "fraud-detector", "version": "2.0.0", "uri": "s3://m/2.0.0"}


def stable_world(replicas: int = 3, **extra: Any) -> tuple[World, str]:
    world = World(spec("1.0.0", replicas=replicas, autoscaling=SCALING, **extra))
    world.reconcile()
    (revision,) = world.deployments
    world.ready_cap[revision] = 100
    world.settle()
    assert world.status["phase"] == "Stable"
    return world, revision


def deployment(world: World, name: str) -> dict[str, Any]:
    return next(
        o
        for p in reversed(world.log)
        for o in p.apply
        if o["kind"] == "Deployment" and o["metadata"]["name"] == name
    )


def test_every_live_revision_gets_an_hpa_and_its_deployment_never_names_a_replica_count() -> None:
    world, revision = stable_world()
    assert world.autoscalers == {revision: (2, 20)}
    hpa = world.autoscaler_objects[revision]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": revision}
    assert hpa["spec"]["metrics"] == SCALING["metrics"] and hpa["spec"]["behavior"] == SCALING["behavior"]
    assert hpa["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    for decided in world.log:
        for obj in decided.apply:
            if obj["kind"] == "Deployment":
                assert "replicas" not in obj["spec"]
    assert world.deployments[revision] == 3  # spec.replicas, the starting size


def test_the_starting_size_is_written_once_and_an_hpa_scaling_draws_no_write() -> None:
    world, revision = stable_world()
    assert [p.hand_over for p in world.log if p.hand_over] == [((revision, 3),)]
    world.autoscale({revision: 11})
    decided = world.reconcile()
    assert decided.hand_over == () and decided.scale == ()
    assert world.deployments[revision] == 11
    before = dict(world.status)
    world.autoscale({revision: 4})
    world.reconcile()
    assert world.deployments[revision] == 4 and world.status == before  # no status churn either


def test_turning_autoscaling_on_hands_the_current_count_over_before_the_field_is_dropped() -> None:
    world = World(spec("1.0.0", replicas=5))
    world.reconcile()
    (revision,) = world.deployments
    world.ready_cap[revision] = 100
    world.settle()
    world.edit(autoscaling=SCALING)
    decided = world.reconcile()
    assert decided.hand_over == ((revision, 5),)
    assert world.deployments[revision] == 5 and world.autoscalers == {revision: (2, 20)}
    world.edit(autoscaling=None)
    world.spec.pop("autoscaling")
    decided = world.reconcile()
    assert deployment(world, revision)["spec"]["replicas"] == 5
    assert world.autoscalers == {}


def test_a_canary_at_30_percent_holds_30_percent_of_the_stable_revisions_current_count() -> None:
    canary = {"canary": {"steps": [{"weight": 30}]}}
    world, old = stable_world(strategy=canary)
    world.autoscale({old: 10})
    world.reconcile()
    world.edit(model=V2)
    world.reconcile()
    new = world.candidate["revision"]
    world.ready_cap[new] = 100
    world.settle()
    assert world.candidate["stage"] == "Canary" and world.weights() == {"stable": 70, "candidate": 30}
    assert world.autoscalers[new] == (3, 6)  # 30% of 10 now, up to 30% of maxReplicas on its own load
    world.autoscale({old: 20})
    world.reconcile()
    assert world.autoscalers[new] == (6, 6)
    world.autoscale()
    assert world.deployments[new] == 6


def test_promotion_inherits_the_stable_count_before_traffic_moves_and_the_old_one_goes_after() -> None:
    world, old = stable_world(strategy={"canary": {"steps": [{"weight": 30}]}})
    world.autoscale({old: 10})
    world.reconcile()
    world.edit(model=V2)
    world.reconcile()
    new = world.candidate["revision"]
    world.ready_cap[new] = 3
    world.settle()
    world.autoscale()
    world.action("Promote")
    world.settle()
    assert world.candidate["stage"] == "Promoting"
    assert world.autoscalers[new][0] == 10
    world.autoscale()
    assert world.deployments[new] == 10
    assert world.services[NAME] == old  # only 3 of 10 Ready: traffic stays
    world.ready_cap[new] = 10
    world.reconcile()
    assert world.status["stable"]["revision"] == new and world.services[NAME] == new
    assert world.status["history"][-1]["message"] == "all 10 replicas ready"  # not spec.replicas' 3
    assert world.deployments[old] == 10  # the old one keeps its size until the switch is observed
    assert old not in world.autoscalers
    world.reconcile()
    assert world.deployments[old] == 10  # nor before the scale-down delay (30s by default) is over
    world.reconcile(30)
    assert world.deployments[old] == 0
    assert world.autoscalers[new] == (2, 20)


def test_a_blue_green_preview_runs_at_the_stable_revisions_current_size() -> None:
    world, old = stable_world(strategy={"blueGreen": {"autoPromote": False}})
    world.autoscale({old: 8})
    world.reconcile()
    world.edit(model=V2)
    world.reconcile()
    new = world.candidate["revision"]
    assert world.autoscalers[new] == (8, 20)


def test_the_revision_backing_a_previous_revision_fallback_keeps_its_fixed_size() -> None:
    world, old = stable_world(fallback={"mode": "PreviousRevision", "replicas": 1})
    world.edit(model=V2)
    world.reconcile()
    new = world.candidate["revision"]
    world.ready_cap[new] = 100
    world.settle()
    world.autoscale()
    world.settle()
    world.reconcile(30)  # past the scale-down delay, in which it drains at the size it had
    assert world.status["stable"]["revision"] == new
    assert world.deployments[old] == 1 and old not in world.autoscalers
    assert deployment(world, old)["spec"]["replicas"] == 1
    assert set(world.autoscalers) == {new}


@given(
    weight=st.integers(1, 100),
    stable_now=st.integers(1, 1000),
    low=st.integers(1, 50),
    high=st.integers(1, 1000),
)
def test_candidate_bounds_follow_the_weight_never_below_one_nor_what_the_step_needs(
    weight: int, stable_now: int, low: int, high: int
) -> None:
    low, high = min(low, high), max(low, high)
    parsed = parse_spec(
        spec(
            "1.0.0",
            autoscaling={"minReplicas": low, "maxReplicas": high},
            strategy={"canary": {"steps": [{"weight": weight}]}},
        )
    )
    at = Position(Stage.CANARY, 0)
    lower, upper = candidate_bounds(parsed, at, stable_now)
    share = math.ceil(stable_now * weight / 100)
    assert 1 <= lower <= upper <= high
    assert lower == min(share, high)
    assert needed_for(parsed, at, stable_now) <= lower
    promoting = candidate_bounds(parsed, Position(Stage.PROMOTING), stable_now)
    assert promoting[0] == min(max(low, stable_now), high) and promoting[1] == high


def test_a_scale_the_deployment_controller_has_not_observed_yet_keeps_the_stable_revision_ready() -> None:
    world, revision = stable_world()
    ready = world.status["conditions"]
    state = world.observed().revisions[revision]
    observed = world.observed()
    unobserved = dataclasses.replace(
        observed, revisions={revision: dataclasses.replace(state, replicas=7, current=False)}
    )
    decided = plan(world.subject(), unobserved, world.now)
    assert decided.status is not None and decided.status["conditions"] == ready
