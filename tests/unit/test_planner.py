"""The planner as a specification: lifecycle examples, then DESIGN.md's rules as properties."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from planner_world import NAME, T0, World, spec

from hypothesis_profiles import examples
from modeldeploy.api import parse_status
from modeldeploy.plan.inputs import Observed
from modeldeploy.plan.outputs import FINALIZER, Plan
from modeldeploy.plan.planner import plan
from modeldeploy.plan.revisions import revision_name, revision_source


def test_first_revision_gets_a_route_only_once_its_replicas_are_ready() -> None:
    world = World(spec())
    world.reconcile()
    assert world.status["phase"] == "Progressing"
    assert world.routes == set()  # nothing to route to yet
    (revision,) = world.deployments
    world.ready_cap[revision] = 2
    world.reconcile()
    assert world.status["phase"] == "Stable"
    assert world.status["stable"]["revision"] == revision
    assert world.routes == {"HTTPRoute"}
    assert world.services == {NAME: revision, f"{NAME}-candidate": "none"}  # selects no pod
    assert world.status["traffic"] == [{"revision": revision, "role": "stable", "weight": 100}]


def test_version_change_promotes_only_when_every_replica_is_ready_then_scales_the_old_one_down() -> None:
    world = World(spec("1.0.0"))
    world.ready_cap = {r: 2 for r in ("unused",)}
    world.reconcile()
    old = next(iter(world.deployments))
    world.ready_cap[old] = 2
    world.settle()
    world.edit(model={"name": "fraud-detector", "version": "2.0.0", "uri": "s3://m/2.0.0"})
    world.reconcile()
    new = world.status["candidate"]["revision"]
    world.ready_cap[new] = 1
    world.settle()
    assert world.status["phase"] == "Progressing" and world.services[NAME] == old
    world.ready_cap[new] = 2
    world.reconcile()
    assert world.status["stable"]["revision"] == new and world.services[NAME] == new
    assert world.deployments[old] == 2  # not before the switch is observed
    world.reconcile()
    assert world.deployments[old] == 2  # nor before the scale-down delay (30s by default) is over
    world.reconcile(28)  # 29s after the promotion
    assert world.deployments[old] == 2 and world.log[-1].requeue_after == 1
    world.reconcile(1)
    assert world.deployments[old] == 0
    assert [h["outcome"] for h in world.status["history"]] == ["Promoted", "Promoted"]


def test_lowering_replicas_to_the_ready_count_lets_the_revision_take_traffic() -> None:
    """Ready is measured against the replica count the plan gives the revision, not the old one."""
    world = World(spec("1.0.0", replicas=2))
    world.reconcile()
    (revision,) = world.deployments
    world.ready_cap[revision] = 1
    world.settle()
    assert world.routes == set() and world.status["phase"] == "Progressing"  # 1/2 Ready: no traffic
    world.edit(replicas=1)
    world.reconcile()
    assert world.deployments[revision] == 1
    assert world.status["traffic"] == [{"revision": revision, "role": "stable", "weight": 100}]


def test_a_threshold_change_is_not_a_new_revision() -> None:
    base = spec()
    tuned = {**base, "analysis": {"metrics": [{"name": "err", "query": "up", "max": 0.5}]}}
    names = {revision_name(NAME, revision_source(*_model_runtime(s))) for s in (base, tuned)}
    assert len(names) == 1


def _model_runtime(raw: dict[str, Any]) -> tuple[Any, Any]:
    from modeldeploy.api import parse_spec

    parsed = parse_spec(raw)
    return parsed.model, parsed.runtime


def version_change_under_way() -> tuple[World, str, str]:
    """A world whose 1.0.0 is stable and Ready, with 2.0.0's candidate just created: (world, old, new)."""
    world = World(spec("1.0.0"))
    world.reconcile()
    old = next(iter(world.deployments))
    world.ready_cap[old] = 2
    world.settle()
    world.edit(model={"name": "fraud-detector", "version": "2.0.0"})
    world.reconcile()
    return world, old, world.status["candidate"]["revision"]


def test_candidate_past_its_deadline_is_degraded_and_keeps_traffic_on_stable() -> None:
    world, old, new = version_change_under_way()
    world.deadline.add(new)
    decided = world.reconcile()
    assert world.status["phase"] == "Degraded"
    assert [e.reason for e in decided.events] == ["ProgressDeadlineExceeded"]
    assert world.services[NAME] == old and world.deployments[old] == 2
    assert world.reconcile().events == ()  # said once, not at every reconcile


def test_a_candidate_whose_pods_cannot_be_created_says_why_once_and_again_when_degraded() -> None:
    world, old, new = version_change_under_way()
    quota = 'pods "x" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2'
    world.failures[new] = quota
    decided = world.reconcile()
    assert world.status["phase"] == "Progressing"
    assert world.status["message"].endswith(f"; pods cannot be created: {quota}")
    assert [(e.reason, e.message) for e in decided.events] == [("FailedCreate", world.status["message"])]
    assert world.reconcile().events == ()  # said once while nothing changes
    world.deadline.add(new)
    world.reconcile()
    assert world.status["phase"] == "Degraded" and quota in world.status["message"]
    assert world.services[NAME] == old
    del world.failures[new]
    world.deadline.clear()
    world.reconcile()
    assert "cannot be created" not in world.status["message"]


def test_invalid_spec_touches_no_object() -> None:
    world = World(spec(analysis={"metrics": [{"name": "e", "query": 'x{a="{{bogus}}"}', "max": 1}]}))
    decided = world.reconcile()
    assert decided.apply == () and decided.delete == () and decided.scale == ()
    assert world.status["phase"] == "Invalid"
    assert "bogus" in world.status["message"]
    assert [e.reason for e in decided.events] == ["InvalidSpec"]
    assert world.reconcile().events == ()


def test_deletion_removes_the_route_before_anything_else() -> None:
    world = World(spec())
    world.reconcile()
    world.ready_cap[next(iter(world.deployments))] = 2
    world.settle()
    world.deleting = True
    first = world.reconcile()
    assert {ref.kind for ref in first.delete} == {"HTTPRoute"}
    assert first.finalizer is None and first.status is None and first.apply == ()
    second = world.reconcile()
    assert {ref.kind for ref in second.delete} == {"Deployment", "Service"}
    assert second.finalizer is None
    assert second.requeue_after is not None  # a deletion lost in a watch gap is looked for
    last = world.reconcile()
    assert last.delete == () and last.finalizer is False  # only once no child is left
    assert world.finalizers == ()
    assert world.reconcile() == Plan()  # released: nothing more to do with it


def test_a_new_model_deployment_gets_the_finalizer_with_its_first_children() -> None:
    world = World(spec(), finalizers=())
    first = world.reconcile()
    assert first.finalizer is True and first.apply  # the act step adds it before any apply
    assert world.finalizers == (FINALIZER,)
    assert world.reconcile().finalizer is None


def test_a_finalizer_someone_removed_is_added_again_and_an_invalid_spec_gets_one_too() -> None:
    world = World(spec())
    world.reconcile()
    world.finalizers = ("example.com/theirs",)
    assert world.reconcile().finalizer is True
    assert world.finalizers == ("example.com/theirs", FINALIZER)
    bogus = {"metrics": [{"name": "e", "query": "x{{bogus}}", "max": 1}]}
    invalid = World(spec(analysis=bogus), finalizers=())
    decided = invalid.reconcile()
    assert decided.finalizer is True and decided.apply == () and invalid.status["phase"] == "Invalid"


def test_a_deleted_model_deployment_without_the_finalizer_is_left_to_the_garbage_collector() -> None:
    world = World(spec())
    world.reconcile()
    world.finalizers, world.deleting = (), True
    assert world.reconcile() == Plan()


def test_retired_drains_route_first_then_serving_objects_and_keeps_history() -> None:
    world = World(spec())
    world.reconcile()
    world.ready_cap[next(iter(world.deployments))] = 2
    world.settle()
    world.edit(retired=True)
    first = world.reconcile()
    assert {ref.kind for ref in first.delete} == {"HTTPRoute"}
    world.settle()
    assert world.deployments == {} and world.services == {} and world.routes == set()
    assert world.status["phase"] == "Retired"
    assert world.status["history"][-1]["outcome"] == "Retired"


def test_history_is_bounded_and_old_revisions_are_pruned() -> None:
    world = World(spec(revisionHistoryLimit=2))
    for version in ("1", "2", "3", "4"):
        world.edit(model={"name": "fraud-detector", "version": version})
        world.reconcile()
        world.ready_cap[world.status.get("candidate", {}).get("revision", "")] = 2
        world.settle()
        world.reconcile(31)  # past the former stable's scale-down delay
        world.reconcile()
    assert len(world.status["history"]) == 2
    assert len(world.deployments) <= 2
    assert world.status["stable"]["version"] == "4"


def test_a_route_written_by_a_killed_reconcile_goes_when_its_revision_loses_its_ready_replicas() -> None:
    """The operator dies after writing the first revision's route but before recording it as stable.

    The route is live but status still says promoting; if the replicas then go
    un-Ready, the next plan removes the route (rule 1: there is no other
    revision to send the traffic to) and comes to rest; once they are Ready
    again, the promotion resumes from status (rule 6).
    """
    world = World(spec())
    world.reconcile()
    (revision,) = world.deployments
    world.ready_cap[revision] = 2
    world.crash_during(1, steps=4)  # Deployment, both Services, the route; no status
    assert world.routes == {"HTTPRoute"} and "stable" not in world.status
    world.ready_cap[revision] = 0
    decided = world.reconcile()
    assert [(ref.kind, ref.name) for ref in decided.delete] == [("HTTPRoute", NAME)]
    assert world.routes == set() and world.deployments == {revision: 2}
    assert world.reconcile().delete == ()  # at rest
    world.ready_cap[revision] = 2
    world.reconcile()
    assert world.status["stable"]["revision"] == revision and world.routes == {"HTTPRoute"}
    assert world.status["traffic"] == [{"revision": revision, "role": "stable", "weight": 100}]


# --- the rules, as properties over random event sequences --------------------------


class RolloutMachine(RuleBasedStateMachine):
    """Random spec edits, readiness changes, deadlines, operator restarts mid-reconcile, idle reconciles.

    After every reconcile (DESIGN.md, "Rules the planner must keep"): weights sum
    to 100; a revision first receives traffic only when as many replicas as the
    plan gives it were already Ready (rule 1); the stable revision is never
    scaled down or deleted, and another revision is scaled down only once the
    stable Service was seen selecting the new stable (rule 3). Between steps:
    left alone, the world comes to rest within a few reconciles, and a
    reconcile of a world at rest writes nothing that changes it and says
    nothing (the planner's half of "zero writes at rest").

    A reconcile may scale a revision down without changing the status: the
    scale-down waits until the switch of the stable Service is observed, which
    is a round after the status recorded the promotion.
    """

    def __init__(self) -> None:
        super().__init__()
        self.world = World(spec())

    @rule(
        version=st.sampled_from(["1.0.0", "1.1.0", "2.0.0"]),
        replicas=st.integers(1, 3),
        router=st.sampled_from(["gatewayAPI", "istio", "service"]),
        paused=st.booleans(),
    )
    def edit(self, version: str, replicas: int, router: str, paused: bool) -> None:
        new = spec(version, replicas, router, paused=paused)
        self.world.spec = new
        self.world.generation += 1

    @rule(data=st.data(), ready=st.integers(0, 3))
    def readiness(self, data: st.DataObject, ready: int) -> None:
        if self.world.deployments:
            name = data.draw(st.sampled_from(sorted(self.world.deployments)))
            self.world.ready_cap[name] = ready

    @precondition(lambda self: bool(self.world.deployments))
    @rule(data=st.data())
    def deadline(self, data: st.DataObject) -> None:
        self.world.deadline.add(data.draw(st.sampled_from(sorted(self.world.deployments))))

    @rule(seconds=st.integers(1, 120), steps=st.integers(0, 8))
    def operator_killed_mid_reconcile(self, seconds: int, steps: int) -> None:
        """A restart at any moment: some writes done, status not written; the next plan must cope."""
        self.world.crash_during(seconds, steps)

    @rule(seconds=st.integers(1, 120))
    def reconcile(self, seconds: int) -> None:
        world = self.world
        traffic_before = {t["revision"] for t in world.status.get("traffic", []) if t["weight"] > 0}
        ready_before = {name: world.ready(name) for name in world.deployments}
        stable_before = (world.status.get("stable") or {}).get("revision")
        selector_before = world.services.get(NAME)
        decided = world.reconcile(seconds)
        parse_status(world.status)  # always a status the API accepts

        traffic = world.status.get("traffic", [])
        if traffic:
            assert sum(t["weight"] for t in traffic) == 100
        for revision in {t["revision"] for t in traffic if t["weight"] > 0} - traffic_before:
            # The plan may resize the revision as it routes to it (a spec edit of
            # spec.replicas): what counts is the replica count it runs from now on.
            replicas = world.deployments.get(revision, 0)
            ready = ready_before.get(revision, 0)
            assert 0 < replicas <= ready, f"{revision} got traffic with {ready}/{replicas} replicas Ready"
        stable_now = (world.status.get("stable") or {}).get("revision")
        for name, replicas in decided.scale:
            assert replicas == 0 and name != stable_now
            assert selector_before == stable_now, "scaled down before traffic moved to the new stable"
        for ref in decided.delete:
            if ref.kind == "Deployment" and not world.deleting:
                assert ref.name not in (stable_now, stable_before)

    @invariant()
    def left_alone_the_world_comes_to_rest_and_says_nothing_there(self) -> None:
        if not self.world.status:
            return
        world = copy.deepcopy(dataclasses.replace(self.world, log=[]))
        later = world.now.replace(year=2027)  # every delay has run out
        for _ in range(REST_WITHIN):
            before = _objects_and_status(world)
            decided = plan(world.subject(), world.observed(), later)
            world.carry_out(decided)
            if _objects_and_status(world) == before:
                assert decided.events == (), f"a reconcile at rest said {decided.events}"
                return
        raise AssertionError(f"not at rest after {REST_WITHIN} reconciles: {[p.events for p in world.log]}")


REST_WITHIN = 4  # promote, then scale the old stable down once the switch is seen, then rest


def _objects_and_status(world: World) -> tuple[Any, ...]:
    return (
        dict(world.deployments),
        dict(world.services),
        copy.deepcopy(world.route_objects),
        set(world.config_maps),
        dict(world.jobs),
        copy.deepcopy(world.status),
    )


TestRolloutMachine = RolloutMachine.TestCase
TestRolloutMachine.settings = settings(
    max_examples=examples(60),
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_planning_an_empty_world_twice_at_different_times_gives_the_same_status() -> None:
    world = World(spec())
    world.reconcile()
    world.ready_cap[next(iter(world.deployments))] = 2
    world.settle()
    first = plan(world.subject(), world.observed(), T0.replace(hour=11))
    second = plan(world.subject(), world.observed(), T0.replace(hour=23))
    assert first.status == second.status == world.status
    assert isinstance(world.observed(), Observed)


def test_a_status_stripped_of_the_sources_leaves_the_stable_deployment_as_found_and_still_promotes() -> None:
    """A status edited by hand (no operatorState, no history) must not stop the reconcile with a KeyError."""
    world = World(spec("1.0.0"))
    world.reconcile()
    (old,) = world.deployments
    world.ready_cap[old] = 2
    world.settle()
    world.status.pop("operatorState")
    world.status.pop("history")
    world.deployments[old] = 3  # someone scaled it: left as found, since it cannot be rendered
    world.edit(model={"name": "fraud-detector", "version": "2.0.0", "uri": "s3://m/2.0.0"})
    world.reconcile()
    new = world.status["candidate"]["revision"]
    assert world.status["stable"]["revision"] == old and world.deployments[old] == 3
    assert world.services[NAME] == old
    world.ready_cap[new] = 2
    world.settle()
    assert world.status["stable"]["revision"] == new and world.services[NAME] == new
    assert world.deployments[old] == 3  # kept warm for the scale-down delay, as any former stable
    world.reconcile(31)
    assert world.deployments.get(old, 0) == 0  # then scaled down (or deleted) like any other


def test_a_status_stripped_of_the_sources_keeps_the_stable_autoscaler_too() -> None:
    world = World(spec("1.0.0", replicas=1, autoscaling={"minReplicas": 1, "maxReplicas": 8}))
    world.reconcile()
    world.ready_all()
    world.settle()
    (old,) = world.deployments
    assert old in world.autoscalers
    world.edit(model={"name": "fraud-detector", "version": "2.0.0", "uri": "s3://m/2.0.0"})
    world.status.pop("operatorState")
    decided = world.reconcile()
    assert old not in {ref.name for ref in decided.delete}
    assert old in world.autoscalers and world.status["stable"]["revision"] == old
