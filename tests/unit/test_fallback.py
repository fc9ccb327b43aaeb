"""Fallback: fail over the moment the stable revision cannot serve, come back only after steady health."""

from __future__ import annotations

from typing import Any

from planner_world import NAME, World, spec

from modeldeploy.plan.inputs import Inputs
from modeldeploy.plan.workloads import nginx_config

RESPONSE = {
    "mode": "Response",
    "response": {"status": 200, "body": '{"score": 0, "fallback": true}'},
    "trigger": {"interval": "10s", "recoverAfter": 3},
}


def stable_world(fallback: dict[str, Any], router: str = "gatewayAPI") -> World:
    world = World(spec("1.0.0", replicas=2, router=router, fallback=fallback))
    world.reconcile()
    world.ready_all()
    world.settle()
    world.ready_all()
    world.settle()
    assert world.status["phase"] == "Stable", world.status
    return world


def backends(world: World) -> list[tuple[str, int]]:
    rule = world.route_objects["HTTPRoute"]["spec"]["rules"][0]
    return [(b["name"], b["weight"]) for b in rule["backendRefs"]]


def test_response_fallback_takes_all_traffic_when_stable_has_no_ready_replica_then_recovers() -> None:
    world = stable_world(RESPONSE)
    stable = world.status["stable"]["revision"]
    assert f"{NAME}-fallback" in world.deployments and f"{NAME}-fallback" in world.config_maps
    assert backends(world) == [("fraud", 100)]

    world.ready_cap[stable] = 0
    decided = world.reconcile(1)
    assert world.status["phase"] == "Degraded"
    assert backends(world) == [("fraud", 0), ("fraud-fallback", 100)]
    assert world.weights() == {"fallback": 100}
    assert [e.reason for e in decided.events] == ["FallbackActivated"]
    active = next(c for c in world.status["conditions"] if c["type"] == "FallbackActive")
    assert active["status"] == "True"

    world.ready_cap[stable] = 2
    for _ in range(2):
        world.reconcile(11)
        assert world.weights() == {"fallback": 100}  # healthy, but not long enough: no flapping
    decided = world.reconcile(11)
    assert [e.reason for e in decided.events] == ["FallbackRecovered"]
    assert backends(world) == [("fraud", 100)] and world.status["phase"] == "Stable"


def test_a_relapse_during_recovery_restarts_the_count() -> None:
    world = stable_world(RESPONSE)
    stable = world.status["stable"]["revision"]
    world.ready_cap[stable] = 0
    world.reconcile(1)
    world.ready_cap[stable] = 2
    world.reconcile(11)
    world.reconcile(11)
    world.ready_cap[stable] = 0
    world.reconcile(11)
    world.ready_cap[stable] = 2
    world.reconcile(11)
    world.reconcile(11)
    assert world.weights() == {"fallback": 100}
    world.reconcile(11)
    assert world.weights() == {"stable": 100}


def test_metric_failures_fail_over_after_the_failure_limit_only() -> None:
    fallback = {
        **RESPONSE,
        "trigger": {
            "interval": "10s",
            "failureLimit": 2,
            "recoverAfter": 1,
            "metrics": [{"name": "err", "query": "up", "max": 0.1}],
        },
    }
    world = stable_world(fallback)
    world.reconcile(11, Inputs(fallback_failing=True))
    assert world.weights() == {"stable": 100}
    world.reconcile(11, Inputs(fallback_failing=True))
    assert world.weights() == {"fallback": 100}
    world.reconcile(11, Inputs(fallback_failing=False))
    assert world.weights() == {"stable": 100}


def test_a_fallback_that_is_not_ready_never_takes_traffic() -> None:
    world = stable_world(RESPONSE)
    stable = world.status["stable"]["revision"]
    world.ready_cap[f"{NAME}-fallback"] = 0
    world.ready_cap[stable] = 0
    decided = world.reconcile(1)
    assert world.weights() == {"stable": 100}
    assert "FallbackNotReady" in [e.reason for e in decided.events]


def test_previous_revision_mode_keeps_the_last_stable_warm_at_fallback_replicas() -> None:
    world = stable_world({"mode": "PreviousRevision", "replicas": 1})
    first = world.status["stable"]["revision"]
    world.edit(model={"name": "fraud-detector", "version": "2.0.0"})
    world.reconcile()
    world.ready_all()
    world.settle()
    second = world.status["stable"]["revision"]
    assert world.deployments[first] == 2  # draining at full size for the scale-down delay (30s)
    world.reconcile(31)
    assert second != first and world.deployments[first] == 1
    assert world.services[f"{NAME}-fallback"] == first
    world.ready_cap[second] = 0
    world.reconcile()
    assert world.weights() == {"fallback": 100}
    assert world.status["traffic"][0]["revision"] == first


def test_service_router_fails_over_by_switching_the_stable_selector() -> None:
    world = stable_world(RESPONSE, router="service")
    stable = world.status["stable"]["revision"]
    world.ready_cap[stable] = 0
    world.reconcile(1)
    assert world.services[NAME] == f"{NAME}-fallback"


def test_nginx_config_serves_the_body_with_the_configured_status() -> None:
    assert "try_files /body =500" in nginx_config(200, "application/json")
    config = nginx_config(503, "application/json")
    assert "return 503" in config and "error_page 503 /body" in config


def test_a_trigger_check_with_its_measurement_still_running_counts_for_nothing() -> None:
    """A pending measurement (Inputs without fallback_failing) neither fails nor heals the trigger."""
    fallback = {
        **RESPONSE,
        "trigger": {
            "interval": "10s",
            "failureLimit": 2,
            "recoverAfter": 1,
            "metrics": [{"name": "err", "query": "up", "max": 0.1}],
        },
    }
    world = stable_world(fallback)
    world.reconcile(11, Inputs(fallback_failing=True))
    checked = world.status["operatorState"]["fallback"]
    world.reconcile(11)  # due, but the measurement has not arrived yet
    assert world.status["operatorState"]["fallback"] == checked
    world.reconcile(1, Inputs(fallback_failing=True))  # it arrives a second later: still due, counted
    assert world.weights() == {"fallback": 100}


def test_a_new_stable_promoted_while_the_fallback_serves_takes_the_traffic_not_the_dead_one() -> None:
    """Rule 1: with the fallback on the previous revision, a promotion never routes to the dead stable.

    The stable revision goes down, the one before it takes all traffic; a fixed
    version is then deployed and promoted. The previous revision is now the
    stable that went down (no Ready replica): traffic goes to the new stable.
    """
    world = stable_world({"mode": "PreviousRevision", "trigger": {"interval": "10s", "recoverAfter": 2}})
    world.edit(model={"name": "fraud-detector", "version": "2.0.0"})
    world.reconcile()
    world.ready_all()
    world.settle()
    broken = world.status["stable"]["revision"]
    world.ready_cap[broken] = 0
    world.reconcile(1)
    assert world.weights() == {"fallback": 100}

    world.edit(model={"name": "fraud-detector", "version": "3.0.0"})
    world.reconcile(1)
    fixed = world.status["candidate"]["revision"]
    world.ready_cap[fixed] = 2
    for _ in range(4):
        world.reconcile(11)
        for share in world.status["traffic"]:
            assert share["weight"] == 0 or world.ready(share["revision"]) > 0, world.status["traffic"]
    assert world.status["stable"]["revision"] == fixed
    assert world.status["traffic"] == [{"revision": fixed, "role": "stable", "weight": 100}]
    assert world.services[NAME] == fixed


def test_an_active_fallback_that_loses_its_ready_replicas_gives_traffic_back_to_a_ready_stable() -> None:
    world = stable_world(RESPONSE)
    stable = world.status["stable"]["revision"]
    world.ready_cap[stable] = 0
    world.reconcile(1)
    assert world.weights() == {"fallback": 100}
    world.ready_cap[stable] = 2
    world.ready_cap[f"{NAME}-fallback"] = 0
    decided = world.reconcile(1)
    assert world.weights() == {"stable": 100}
    assert backends(world) == [("fraud", 100)]
    assert world.services[NAME] == stable
    assert "FallbackNotReady" in [e.reason for e in decided.events]


def test_the_previous_revision_serving_as_fallback_stays_the_fallback_when_history_forgets_it() -> None:
    """Rule 1: superseded candidates push its Promoted entry out of history; traffic stays on it, Ready."""
    world = stable_world({"mode": "PreviousRevision", "trigger": {"interval": "10s", "recoverAfter": 2}})
    first = world.status["stable"]["revision"]
    world.edit(model={"name": "fraud-detector", "version": "2.0.0"})
    world.reconcile()
    world.ready_all()
    world.settle()
    world.reconcile(31)  # the former stable's scale-down delay: down to the fallback's replicas
    world.ready_cap[world.status["stable"]["revision"]] = 0
    world.reconcile(1)
    assert world.status["traffic"] == [{"revision": first, "role": "fallback", "weight": 100}]
    for version in ("3.0.0", "4.0.0") * 4:  # never Ready: each is superseded by the next
        world.edit(model={"name": "fraud-detector", "version": version})
        world.reconcile(1)
        assert world.status["traffic"] == [{"revision": first, "role": "fallback", "weight": 100}]
        assert world.services[f"{NAME}-fallback"] == first and world.deployments[first] == 1
    assert first not in {h["revision"] for h in world.status["history"]}
