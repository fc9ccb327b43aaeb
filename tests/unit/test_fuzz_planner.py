"""Fuzzing the planner: random strategies, routers and fallbacks under random events keep DESIGN.md's rules.

A state machine picks a spec (router gatewayAPI, istio or service; a canary
with random steps, blue-green, shadow then canary, or none; a fallback or
none), then interleaves version edits, readiness changes, verdicts, manual
actions, fallback triggers, a status stripped of its bookkeeping and the passing
of time. After every reconcile:

- weights in status and in the rendered route sum to 100 (rule 2);
- a mirror is 0..100 and only ever to the candidate (rule 2);
- no revision gains traffic unless the planner saw it with Ready replicas (rule 1), except stable
  taking back a dropped candidate's share when no fallback is Ready: nowhere else it may go;
- the revision serving all traffic is never scaled to zero or deleted (rule 3).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from planner_world import NAME, World, spec

from hypothesis_profiles import examples
from modeldeploy.api import Verdict, VerdictKind
from modeldeploy.plan.inputs import Inputs

VERDICTS = [
    None,
    Inputs(verdict=Verdict(VerdictKind.PASS, "AnalysisPassed", "all metrics pass")),
    Inputs(verdict=Verdict(VerdictKind.HOLD, "MeasurementInconclusive", "error-rate: no data")),
    Inputs(verdict=Verdict(VerdictKind.PENDING, "AnalysisPending", "not measured yet")),
    Inputs(verdict=Verdict(VerdictKind.FAIL, "MetricFailed", "error-rate 0.2 > max 0.01")),
    Inputs(verdict=Verdict(VerdictKind.ROLLBACK_INCONCLUSIVE, "InconclusiveLimitReached", "no data 3 times")),
    Inputs(fallback_failing=True),
    Inputs(fallback_failing=False),
]
ANALYSIS = {"interval": "10s", "metrics": [{"name": "error-rate", "query": "up", "max": 0.01}]}

steps = st.lists(
    st.fixed_dictionaries(
        {"weight": st.integers(1, 99)}, optional={"pause": st.sampled_from(["5s", "30s", "2m"])}
    ),
    min_size=1,
    max_size=4,
).map(lambda s: sorted(s, key=lambda step: step["weight"]))
strategies = st.one_of(
    st.none(),
    steps.map(lambda s: {"canary": {"steps": s}}),
    st.fixed_dictionaries(
        {"previewDuration": st.sampled_from(["10s", "1m"]), "autoPromote": st.booleans()}
    ).map(lambda b: {"blueGreen": b}),
    st.tuples(st.integers(1, 100), steps).map(
        lambda t: {"shadow": {"percent": t[0], "duration": "20s"}, "canary": {"steps": t[1]}}
    ),
)
fallbacks = st.one_of(
    st.none(),
    st.just({"mode": "PreviousRevision", "trigger": {"interval": "10s", "recoverAfter": 2}}),
    st.just(
        {
            "mode": "Response",
            "response": {"status": 200, "body": "{}"},
            "trigger": {"interval": "10s", "recoverAfter": 2},
        }
    ),
)


MAX_REPLICAS = 8


class FuzzedPlannerMachine(RuleBasedStateMachine):
    world: World

    @initialize(
        router=st.sampled_from(["gatewayAPI", "istio", "service"]),
        strategy=strategies,
        fallback=fallbacks,
        analysed=st.booleans(),
        replicas=st.integers(1, 5),
        autoscaled=st.booleans(),
    )
    def setup(
        self,
        router: str,
        strategy: dict[str, Any] | None,
        fallback: dict[str, Any] | None,
        analysed: bool,
        replicas: int,
        autoscaled: bool,
    ) -> None:
        extra: dict[str, Any] = {}
        if autoscaled:
            extra["autoscaling"] = {"minReplicas": 1, "maxReplicas": MAX_REPLICAS}
        if strategy is not None:
            extra["strategy"] = strategy
        if fallback is not None:
            extra["fallback"] = fallback
        if analysed:
            extra["analysis"] = ANALYSIS
        self.world = World(spec("1.0.0", replicas=replicas, router=router, **extra))
        self.world.reconcile()
        self.world.ready_all()
        self.world.settle()

    @rule(version=st.sampled_from(["1.0.0", "2.0.0", "3.0.0"]))
    def edit_version(self, version: str) -> None:
        self.world.edit(model={"name": "fraud-detector", "version": version, "uri": f"s3://m/{version}"})

    @rule(data=st.data())
    def readiness(self, data: st.DataObject) -> None:
        for name in sorted(self.world.deployments):
            self.world.ready_cap[name] = data.draw(st.sampled_from([0, 1, 100]), label=name)

    @rule(data=st.data())
    def autoscale(self, data: st.DataObject) -> None:
        """The HPAs scale their Deployments to what a load asks for, within their bounds."""
        load = {
            name: data.draw(st.integers(1, 2 * MAX_REPLICAS), label=name)
            for name in sorted(self.world.autoscalers)
        }
        self.world.autoscale(load)

    @rule(action=st.sampled_from(["Promote", "PromoteFull", "Abort", "Retry", "Undo"]))
    def manual_action(self, action: str) -> None:
        self.world.action(action)

    @rule(dropped=st.sampled_from([("operatorState",), ("history",), ("operatorState", "history")]))
    def status_edited_by_hand(self, dropped: tuple[str, ...]) -> None:
        """Someone with rights on status drops the operator's bookkeeping: the rules still hold."""
        for key in dropped:
            self.world.status.pop(key, None)

    @rule(verdict=st.sampled_from(VERDICTS), seconds=st.sampled_from([0.5, 1, 5, 11, 31, 130]))
    def reconcile(self, verdict: Inputs | None, seconds: float) -> None:
        world = self.world
        ready_seen = {name: world.ready(name) for name in world.deployments}
        before = shares(world.status)
        serving_alone = [r for r, (w, _) in before.items() if w == 100]
        decided = world.reconcile(seconds, verdict)
        after = shares(world.status)

        traffic = world.status.get("traffic", [])
        assert not traffic or sum(t["weight"] for t in traffic) == 100, traffic
        for share in traffic:
            mirror = share.get("mirrorPercent")
            assert mirror is None or (0 <= mirror <= 100 and share["role"] == "candidate"), share
        fallback_ready = ready_seen.get(f"{NAME}-fallback", 0) > 0
        for revision, (weight, role) in after.items():
            # A dropped candidate's share (rollback, abort, superseded) can only go back to stable,
            # Ready or not, when no fallback can take it.
            returned = role == "stable" and len(after) == 1 and not fallback_ready
            if weight > before.get(revision, (0, None))[0] and not returned:
                assert ready_seen.get(revision, 0) > 0, (
                    f"{revision} got {weight}% but had no Ready replica",
                    before,
                    after,
                    ready_seen,
                )
        autoscaled = {
            o["metadata"]["name"]: o for o in decided.apply if o["kind"] == "HorizontalPodAutoscaler"
        }
        for obj in decided.apply:
            if obj["kind"] == "HorizontalPodAutoscaler":
                low, high = obj["spec"]["minReplicas"], obj["spec"]["maxReplicas"]
                assert 1 <= low <= high <= MAX_REPLICAS, obj["spec"]
            elif obj["kind"] == "Deployment" and obj["metadata"]["name"] in autoscaled:
                assert "replicas" not in obj["spec"], obj["metadata"]["name"]  # the HPA owns the count
        for name, _ in decided.scale:
            assert name not in autoscaled, f"{name} has an HPA and was scaled by the operator"
        for revision in serving_alone:
            if revision in ready_seen and after.get(revision, (0, None))[0] == 100:
                assert (revision, 0) not in decided.scale, (
                    f"{revision} serves all traffic but was scaled to 0"
                )
                assert revision not in {r.name for r in decided.delete}, revision

    @invariant()
    def route_is_well_formed(self) -> None:
        for kind, route in getattr(self, "world", World({})).route_objects.items():
            if kind not in self.world.routes:
                continue
            if kind == "HTTPRoute":
                for rule_ in route["spec"]["rules"]:
                    weights = [b.get("weight", 1) for b in rule_["backendRefs"]]
                    assert sum(weights) == 100, rule_
                    for f in rule_.get("filters", []):
                        mirror = f.get("requestMirror")
                        if mirror:
                            assert mirror["backendRef"]["name"] == f"{NAME}-candidate", f
                            assert 0 <= mirror.get("percent", 100) <= 100, f
            else:
                for http in route["spec"]["http"]:
                    assert sum(r.get("weight", 100) for r in http["route"]) == 100, http
                    if "mirror" in http:
                        assert http["mirror"]["host"].startswith(f"{NAME}-candidate"), http
                        assert 0 <= http.get("mirrorPercentage", {}).get("value", 100) <= 100, http


def shares(status: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """revision -> (weight, role) from status.traffic (a revision appears once)."""
    return {t["revision"]: (t["weight"], t["role"]) for t in status.get("traffic", [])}


TestFuzzedPlanner = FuzzedPlannerMachine.TestCase
TestFuzzedPlanner.settings = settings(
    max_examples=examples(150),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
