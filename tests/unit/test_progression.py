"""Progressive delivery in the planner: stages, steps, analysis gates, rollback, manual actions, undo."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule
from planner_world import NAME, World, spec

from hypothesis_profiles import examples
from modeldeploy.api import MeasurementPhase, MetricResult, Verdict, VerdictKind
from modeldeploy.kube.apply import status_patch
from modeldeploy.plan.inputs import Inputs, WarmupOutcome

PASS = Inputs(verdict=Verdict(VerdictKind.PASS, "AnalysisPassed", "all metrics pass"))
HOLD = Inputs(verdict=Verdict(VerdictKind.HOLD, "MeasurementInconclusive", "error-rate: no data"))
PENDING = Inputs(verdict=Verdict(VerdictKind.PENDING, "AnalysisPending", "not measured yet"))
FAIL = Inputs(verdict=Verdict(VerdictKind.FAIL, "MetricFailed", "error-rate 0.2 > max 0.01"))

ANALYSIS = {"interval": "10s", "metrics": [{"name": "error-rate", "query": "up", "max": 0.01}]}
CANARY = {
    "canary": {"steps": [{"weight": 10, "pause": "30s"}, {"weight": 50, "pause": "30s"}, {"weight": 80}]}
}


def stable_world(**strategy_and_more: Any) -> World:
    world = World(spec("1.0.0", replicas=4, **strategy_and_more))
    world.reconcile()
    world.ready_all()
    world.settle()
    assert world.status["phase"] == "Stable"
    return world


def new_version(world: World, version: str = "2.0.0") -> str:
    world.edit(model={"name": "fraud-detector", "version": version})
    world.reconcile()
    world.reconcile()
    return str(world.candidate["revision"])


def enter(world: World, inputs: Inputs | None = None) -> None:
    """Let every Deployment become Ready and reconcile until the candidate has entered its position."""
    world.ready_all()
    for _ in range(4):
        world.reconcile(inputs=inputs)
        world.ready_all()
        if world.candidate.get("stageStartedAt"):
            return


def test_canary_steps_apply_each_weight_only_once_the_step_replicas_are_ready() -> None:
    world = stable_world(strategy=CANARY, analysis=ANALYSIS)
    candidate = new_version(world)
    assert world.candidate["stage"] == "Canary" and world.candidate["step"] == 0
    assert world.weights() == {"stable": 100}  # not ready yet: no live traffic
    # 10% needs ceil(4 * 10%) = 1 replica; the next step's 2 are started already, so it can begin on time.
    assert world.deployments[candidate] == 2
    enter(world, PENDING)
    assert world.weights() == {"stable": 90, "candidate": 10}
    world.reconcile(31, PENDING)  # pause over, but no measurement yet: hold
    assert world.candidate["step"] == 0
    world.reconcile(1, PASS)
    # 50% needs the 2 replicas Ready already: the plan that ends step 1 starts step 2.
    assert world.candidate["step"] == 1 and world.candidate.get("stageStartedAt")
    assert world.weights() == {"stable": 50, "candidate": 50}
    assert world.deployments[candidate] == 4  # the last step's ceil(4 * 80%) = 4 are started
    world.reconcile(31, PASS)
    enter(world, PASS)
    assert world.candidate["step"] == 2 and world.weights() == {"stable": 20, "candidate": 80}
    world.settle(inputs=PASS)
    assert world.candidate["step"] == 2  # the last step has no pause: it waits for a person
    assert "waiting for promote" in world.status["message"]
    world.action("Promote")
    world.reconcile(1, PASS)
    enter(world, PASS)
    assert world.status["phase"] == "Stable" and world.status["stable"]["revision"] == candidate
    assert world.services[NAME] == candidate and world.weights() == {"stable": 100}
    assert "action" not in world.status


def test_a_new_candidate_says_what_it_waits_for_in_the_plan_that_creates_it() -> None:
    """One status write for a new revision's start, not two: the plan that creates its Deployment
    moves it to its first position in the words it then waits in, so the passes until its replicas
    are Ready write no status (the watch events of its Deployment and ReplicaSet plan again)."""
    world = stable_world(strategy=CANARY, analysis=ANALYSIS)
    world.edit(model={"name": "fraud-detector", "version": "2.0.0"})
    world.reconcile()
    candidate = world.candidate["revision"]
    assert candidate in world.deployments
    assert (world.candidate["stage"], world.candidate["step"]) == ("Canary", 0)
    assert not world.candidate.get("stageStartedAt") and world.weights() == {"stable": 100}
    assert world.status["message"] == f"{candidate}: 0/1 replicas ready for canary step 1/3 at 10%"
    waiting = world.status
    for _ in range(3):
        decided = world.reconcile()
        assert decided.status is not None and not status_patch(waiting, decided.status)  # nothing to write
    assert world.status == waiting
    enter(world, PENDING)
    assert world.weights() == {"stable": 90, "candidate": 10}


def test_a_step_that_ends_before_the_next_steps_replicas_are_ready_keeps_its_weight_until_they_are() -> None:
    world = stable_world(strategy=CANARY, analysis=ANALYSIS)
    candidate = new_version(world)
    enter(world, PENDING)
    world.ready_cap[candidate] = 1  # step 2 (50%) needs 2 Ready; one is not
    world.reconcile(31, PASS)
    assert world.candidate["step"] == 1 and not world.candidate.get("stageStartedAt")
    assert world.weights() == {"stable": 90, "candidate": 10}
    assert "canary step 1/3 at 10% passed" in world.status["message"]
    world.reconcile(1, PASS)
    assert world.weights() == {"stable": 90, "candidate": 10}
    assert world.status["message"].startswith(f"{candidate}: 1/2 replicas ready for canary step 2/3")
    world.ready_cap[candidate] = 2
    world.reconcile(1, PASS)
    assert world.candidate.get("stageStartedAt") and world.weights() == {"stable": 50, "candidate": 50}


def test_a_failed_analysis_rolls_back_at_once_and_does_not_retry_until_asked() -> None:
    world = stable_world(strategy=CANARY, analysis=ANALYSIS)
    old = world.status["stable"]["revision"]
    candidate = new_version(world)
    enter(world, PENDING)
    world.reconcile(31, PASS)
    enter(world, PENDING)
    assert world.weights() == {"stable": 50, "candidate": 50}
    running = world.deployments[candidate]
    decided = world.reconcile(1, FAIL)
    assert world.status["phase"] == "RolledBack"
    assert world.weights() == {"stable": 100}
    assert world.services[NAME] == old
    assert world.status["history"][-1]["outcome"] == "RolledBack"
    assert "error-rate 0.2 > max 0.01" in world.status["message"]
    assert [e.reason for e in decided.events] == ["RolledBack"]
    world.reconcile()
    assert world.deployments[candidate] == running  # draining: requests the gateway already sent finish
    world.reconcile(30)
    assert world.deployments[candidate] == 0  # scaled to zero, kept for the record
    world.settle(inputs=PASS)
    assert world.status["phase"] == "RolledBack" and "candidate" not in world.status
    world.action("Retry")
    world.reconcile()
    assert world.candidate["revision"] == candidate and world.status["phase"] == "Progressing"


def test_inconclusive_analysis_holds_the_step_forever() -> None:
    world = stable_world(strategy=CANARY, analysis=ANALYSIS)
    new_version(world)
    enter(world, HOLD)
    for _ in range(20):
        world.reconcile(60, HOLD)
    assert world.candidate["step"] == 0 and world.weights()["candidate"] == 10
    assert "no data" in world.status["message"]


def test_shadow_mirrors_then_warmup_failure_rolls_back_before_any_traffic() -> None:
    strategy = {"warmup": {"path": "/infer"}, "shadow": {"percent": 50, "duration": "1m"}}
    world = stable_world(strategy=strategy, analysis=ANALYSIS)
    new_version(world)
    assert world.candidate["stage"] == "Warmup"
    enter(world)
    assert world.weights() == {"stable": 100}
    world.reconcile(1, Inputs(warmup=WarmupOutcome(False, "warm-up failed: p99 900ms > maxLatencyP99 300ms")))
    assert world.status["phase"] == "RolledBack" and "p99 900ms" in world.status["message"]
    assert world.status["history"][-1]["reason"] == "WarmupFailed"

    world = stable_world(strategy=strategy, analysis=ANALYSIS)
    candidate = new_version(world)
    enter(world)
    world.reconcile(1, Inputs(warmup=WarmupOutcome(True, "warm-up passed")))
    assert world.candidate["stage"] == "Shadow"
    enter(world, PENDING)
    shares = {t["role"]: t for t in world.status["traffic"]}
    assert shares["stable"]["weight"] == 100 and shares["candidate"]["mirrorPercent"] == 50
    assert shares["candidate"]["weight"] == 0
    world.reconcile(61, PASS)
    enter(world, PASS)
    assert world.status["stable"]["revision"] == candidate


def test_blue_green_waits_for_manual_promote_and_keeps_the_old_revision_warm() -> None:
    strategy = {"blueGreen": {"autoPromote": False, "scaleDownDelay": "2m"}}
    world = stable_world(strategy=strategy)
    old = world.status["stable"]["revision"]
    candidate = new_version(world)
    enter(world)
    assert world.deployments[candidate] == 4 and world.weights() == {"stable": 100}
    assert world.services[f"{NAME}-candidate"] == candidate  # the preview
    world.settle()
    assert world.status["phase"] == "Progressing" and world.services[NAME] == old
    world.action("Promote")
    world.reconcile()
    enter(world)
    assert world.status["stable"]["revision"] == candidate and world.services[NAME] == candidate
    world.settle()
    assert world.deployments[old] == 4  # warm, for an instant undo
    world.reconcile(121)
    world.reconcile()
    assert world.deployments[old] == 0


def test_undo_returns_to_the_previous_revision_and_to_a_named_one() -> None:
    world = stable_world()
    first = world.status["stable"]["revision"]
    second = new_version(world, "2.0.0")
    world.ready_all()
    world.settle()
    third = new_version(world, "3.0.0")
    world.ready_all()
    world.settle()
    assert world.status["stable"]["revision"] == third
    world.action("Undo")
    world.reconcile()
    world.ready_all()
    world.settle()
    assert world.status["stable"]["revision"] == second and world.services[NAME] == second
    assert world.status["phase"] == "RolledBack"  # the spec still asks for 3.0.0
    world.action("Undo", toRevision=first)
    world.reconcile()
    world.ready_all()
    world.settle()
    assert world.status["stable"]["revision"] == first
    world.action("Retry")
    world.reconcile()
    world.ready_all()
    world.settle()
    assert world.status["stable"]["revision"] == third and world.status["phase"] == "Stable"


def test_abort_and_promote_full() -> None:
    world = stable_world(strategy=CANARY, analysis=ANALYSIS)
    new_version(world)
    enter(world, PENDING)
    world.action("Abort")
    world.reconcile()
    assert world.status["phase"] == "RolledBack" and world.status["history"][-1]["outcome"] == "Aborted"
    world = stable_world(strategy=CANARY, analysis=ANALYSIS)
    candidate = new_version(world)
    enter(world, PENDING)
    world.action("PromoteFull")
    world.reconcile(1, PENDING)
    enter(world, PENDING)
    assert world.status["stable"]["revision"] == candidate


def test_service_router_approximates_canary_weights_by_replicas() -> None:
    world = stable_world(strategy={"canary": {"steps": [{"weight": 25, "pause": "1m"}]}}, router="service")
    candidate = new_version(world)
    enter(world)
    assert world.deployments[candidate] == 1
    assert world.services[NAME] is None  # selects by instance: both revisions' pods
    assert world.weights() == {"stable": 75, "candidate": 25}


class CanaryMachine(RuleBasedStateMachine):
    """Random readiness, verdicts, versions and time against a canary with analysis.

    The candidate leaves an analysed step on its own only after a passing
    verdict (Inconclusive is not success), gets weight only when Ready, and the
    weights always sum to 100.
    """

    def __init__(self) -> None:
        super().__init__()
        self.world = stable_world(strategy=CANARY, analysis=ANALYSIS)

    @rule(version=st.sampled_from(["2.0.0", "3.0.0", "1.0.0"]))
    def edit(self, version: str) -> None:
        self.world.edit(model={"name": "fraud-detector", "version": version})

    @rule(ready=st.booleans())
    def readiness(self, ready: bool) -> None:
        for name in self.world.deployments:
            self.world.ready_cap[name] = 100 if ready else 0

    @rule(verdict=st.sampled_from([PASS, HOLD, PENDING, FAIL]), seconds=st.integers(1, 60))
    def reconcile(self, verdict: Inputs, seconds: int) -> None:
        world = self.world
        before = world.candidate
        ready_before = {
            name: world.ready(name) >= replicas > 0 for name, replicas in world.deployments.items()
        }
        world.reconcile(seconds, verdict)
        after = world.candidate
        traffic = world.status.get("traffic", [])
        assert not traffic or sum(t["weight"] for t in traffic) == 100
        assert verdict_allows(before, after, verdict), (before, after, verdict)
        for share in traffic:
            if (
                share["role"] == "candidate"
                and share["weight"] > 0
                and share["weight"] != before.get("weight")
            ):
                assert ready_before.get(share["revision"]), "canary weight applied before Ready"


def verdict_allows(before: dict[str, Any], after: dict[str, Any], inputs: Inputs) -> bool:
    """A candidate moves from one entered canary step to the next only with a passing verdict."""
    moved = (
        before.get("stage") == "Canary"
        and before.get("stageStartedAt")
        and after.get("revision") == before.get("revision")
        and (after.get("step"), after.get("stage")) != (before.get("step"), before.get("stage"))
    )
    return not moved or (inputs.verdict is not None and inputs.verdict.passed)


TestCanaryMachine = CanaryMachine.TestCase
TestCanaryMachine.settings = settings(
    max_examples=examples(40),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_the_candidate_service_keeps_its_pods_until_the_route_is_seen_to_stop_sending_to_it() -> None:
    """Rule 1 across two writes: the route changes first; the Service only once that is observed."""
    world = stable_world(strategy=CANARY, analysis=ANALYSIS)
    candidate = new_version(world)
    enter(world, PENDING)
    assert world.weights() == {"stable": 90, "candidate": 10}
    world.action("Abort")
    decided = world.reconcile()
    selectors = {
        o["metadata"]["name"]: o["spec"]["selector"] for o in decided.apply if o["kind"] == "Service"
    }
    assert selectors[f"{NAME}-candidate"] == {"modeldeploy.io/revision": candidate}
    route = next(o for o in decided.apply if o["kind"] == "HTTPRoute")
    assert [b["name"] for b in route["spec"]["rules"][0]["backendRefs"]] == [NAME]
    world.reconcile()
    assert world.services[f"{NAME}-candidate"] == "none"


def test_rounds_kept_unwritten_are_planned_from_but_leave_status_analysis_as_it_was() -> None:
    world = stable_world(strategy=CANARY, analysis=ANALYSIS)
    new_version(world)
    enter(world, PENDING)
    first = MetricResult(
        metric="error-rate", phase=MeasurementPhase.SUCCESSFUL, value=0.001, measured_at=world.now
    )
    world.reconcile(0, Inputs(analysis=(first,), verdict=PASS.verdict))
    assert world.status["analysis"][0]["value"] == 0.001  # written
    newer = first.model_copy(update={"value": 0.002, "measured_at": world.now + timedelta(seconds=10)})
    kept = Inputs(analysis=(newer,), verdict=PASS.verdict, analysis_unsaved=True)
    decided = world.reconcile(10, kept)
    assert world.status["analysis"][0]["value"] == 0.001  # status keeps its record
    assert decided.requeue_after == 10  # the next round is due 10 s after the kept one
    world.reconcile(0, replace(kept, analysis_unsaved=False))
    assert world.status["analysis"][0]["value"] == 0.002


def test_a_timed_stage_writes_its_status_when_it_starts_and_not_again_while_it_waits() -> None:
    """Its message names the end time, not a countdown: a countdown rewrote status at every reconcile
    (every round of analysis, every 5 s of a 10-minute pause), with an Event-free write each time."""
    world = stable_world(strategy=CANARY)
    new_version(world)
    enter(world)
    entered = world.status
    assert world.candidate["stageStartedAt"]
    assert entered["message"].startswith("canary step 1/3 at 10% until ")
    for seconds in (1, 4, 10, 14):  # reconciles while the 30 s pause lasts
        world.reconcile(seconds)
        assert world.status == entered
    world.reconcile(2)  # past its end
    assert world.candidate["step"] == 1
