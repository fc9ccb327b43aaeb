"""Traffic safety: a route the gateway refuses moves no traffic; a revision the route leaves drains first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule
from planner_world import NAME, World, spec

from hypothesis_profiles import examples
from modeldeploy.api import ModelSpec, RuntimeSpec, Verdict, VerdictKind, parse_spec
from modeldeploy.kube.observe import observe
from modeldeploy.kube.store import Store
from modeldeploy.plan.acceptance import Acceptance, RouteStatus, route_verdict
from modeldeploy.plan.inputs import Inputs, Subject
from modeldeploy.plan.revisions import revision_name, revision_source
from modeldeploy.plan.routes import Backend, Split, render_route
from modeldeploy.plan.workloads import Owner, revision_deployment

PASS = Inputs(verdict=Verdict(VerdictKind.PASS, "AnalysisPassed", "all metrics pass"))
FAIL = Inputs(verdict=Verdict(VerdictKind.FAIL, "MetricFailed", "error-rate 0.2 > max 0.01"))
ANALYSIS = {"interval": "10s", "metrics": [{"name": "error-rate", "query": "up", "max": 0.01}]}
CANARY = {"canary": {"steps": [{"weight": 10, "pause": "30s"}, {"weight": 50, "pause": "30s"}]}}


def stable_world(router: str = "gatewayAPI", **extra: Any) -> World:
    world = World(spec("1.0.0", replicas=2, router=router, **extra))
    world.reconcile()
    world.ready_all()
    world.settle()
    assert world.status["phase"] == "Stable"
    return world


def new_version(world: World, version: str = "2.0.0") -> str:
    world.edit(model={"name": "fraud-detector", "version": version})
    world.reconcile()
    world.reconcile()
    world.ready_all()
    return str(world.candidate["revision"])


def condition(world: World, type_: str = "RouteAccepted") -> dict[str, Any] | None:
    return next((c for c in world.status["conditions"] if c["type"] == type_), None)


def events(world: World) -> list[str]:
    return [e.reason for p in world.log for e in p.events]


# --- a refused route holds traffic where it is -------------------------------------


def test_a_refused_route_holds_the_canary_step_and_says_who_refused_it_and_why() -> None:
    world = stable_world(strategy=CANARY, analysis=ANALYSIS)
    new_version(world)
    world.gateway = "refuse"
    world.settle(inputs=PASS)
    assert world.weights() == {"stable": 100}  # the 10% step is never entered
    assert "holding at canary step 1/2" in world.status["message"]
    route = condition(world)
    assert route is not None and route["status"] == "False" and route["reason"] == "RouteRefused"
    for words in ("HTTPRoute fraud", "risk/public", "example.com/gateway", "ResolvedRefs False"):
        assert words in route["message"]
    assert "BackendNotFound: service fraud-candidate not found" in route["message"]
    assert "kubectl describe httproute" in route["message"]  # what to do
    assert events(world).count("RouteRefused") == 1  # once, when the refusal starts

    world.gateway = "accept"
    world.reconcile(1, PASS)
    world.reconcile(1, PASS)
    assert world.weights() == {"stable": 90, "candidate": 10}
    route = condition(world)
    assert route is not None and route["status"] == "True"
    assert "RouteAccepted" in events(world)


def test_a_refused_route_neither_promotes_nor_retires_the_revision_it_may_still_serve() -> None:
    world = stable_world(strategy=CANARY, analysis=ANALYSIS)
    old = world.status["stable"]["revision"]
    candidate = new_version(world)
    for _ in range(3):
        world.reconcile(31, PASS)
    assert world.weights() == {"stable": 50, "candidate": 50}
    world.gateway = "refuse"
    for _ in range(5):
        world.reconcile(61, PASS)
    assert world.status["stable"]["revision"] == old and world.services[NAME] == old
    assert world.weights() == {"stable": 50, "candidate": 50}
    assert world.deployments[old] == 2 and world.deployments[candidate] == 2
    world.gateway = "accept"
    world.reconcile(1, PASS)
    world.reconcile(1, PASS)
    assert world.status["stable"]["revision"] == candidate
    world.reconcile(1)
    assert world.deployments[old] == 2  # draining
    world.gateway = "refuse"  # the promotion's route change is refused: the old revision stays up
    world.reconcile(120)
    world.reconcile(120)
    assert world.deployments[old] == 2
    world.gateway = "accept"
    world.reconcile(1)
    assert world.deployments[old] == 0


def test_a_refused_route_still_lets_a_failing_candidate_roll_back() -> None:
    world = stable_world(strategy=CANARY, analysis=ANALYSIS)
    candidate = new_version(world)
    world.reconcile(1, PASS)
    world.reconcile(1, PASS)
    assert world.weights() == {"stable": 90, "candidate": 10}
    world.gateway = "refuse"
    world.reconcile(1, FAIL)
    assert world.status["phase"] == "RolledBack" and world.weights() == {"stable": 100}
    world.reconcile(120)
    assert world.deployments[candidate] > 0  # retired only once the gateway takes the route
    assert world.services[f"{NAME}-candidate"] == candidate


def test_a_blue_green_switch_waits_for_the_gateway_to_catch_up_with_the_route() -> None:
    world = stable_world(strategy={"blueGreen": {"autoPromote": True}})
    old = world.status["stable"]["revision"]
    world.gateway = "lag"  # Accepted, but for the route's previous generation
    new_version(world)
    world.settle()
    assert world.status["stable"]["revision"] == old
    route = condition(world)
    assert route is not None and route["reason"] == "RouteNotYetAccepted" and route["status"] == "False"
    assert "generation 1 is not yet accepted by parent risk/public" in route["message"]
    world.gateway = "accept"
    world.settle()
    assert world.status["stable"]["revision"] != old


def test_a_route_no_gateway_answers_for_waits_the_acceptance_wait_then_moves_unconfirmed() -> None:
    world = World(spec("1.0.0", strategy=CANARY, analysis=ANALYSIS))
    world.gateway = None
    world.reconcile()
    world.ready_all()
    world.reconcile()  # the route is created now
    new_version(world)
    world.reconcile(1, PASS)
    assert world.weights() == {"stable": 100}  # within 30s of the route's creation
    assert world.log[-1].requeue_after is not None and world.log[-1].requeue_after <= 28  # woken when it ends
    route = condition(world)
    assert route is not None and route["status"] == "Unknown" and route["reason"] == "NoGatewayStatus"
    assert "traffic waits up to 30s after its creation" in route["message"]
    world.reconcile(30, PASS)
    world.reconcile(1, PASS)
    assert world.weights() == {"stable": 90, "candidate": 10}
    route = condition(world)
    assert route is not None and route["status"] == "Unknown" and route["reason"] == "NoGatewayStatus"
    assert "without the gateway's confirmation" in route["message"]
    world.settle(inputs=PASS)
    assert events(world).count("RouteUnconfirmed") == 1


def test_istio_and_service_routers_have_no_route_status_to_wait_for() -> None:
    for router in ("istio", "service"):
        world = stable_world(router=router, strategy=CANARY, analysis=ANALYSIS)
        world.gateway = "refuse"  # nothing reads it
        new_version(world)
        world.reconcile(1, PASS)
        world.reconcile(1, PASS)
        assert world.weights() == {"stable": 90, "candidate": 10}
        assert condition(world) is None


def route(parents: list[dict[str, Any]], generation: int = 3, **spec_extra: Any) -> RouteStatus:
    return RouteStatus.from_route(
        {
            "kind": "HTTPRoute",
            "metadata": {
                "name": "fraud",
                "namespace": "risk",
                "generation": generation,
                "creationTimestamp": "2026-11-22T10:00:00Z",
            },
            "spec": {
                "parentRefs": [{"name": "public", "namespace": "gw", "sectionName": "https"}],
                **spec_extra,
            },
            "status": {"parents": parents},
        }
    )


def parent(name: str = "public", section: str = "https", **conditions: tuple[str, int]) -> dict[str, Any]:
    return {
        "parentRef": {"name": name, "namespace": "gw", "sectionName": section},
        "controllerName": "example.com/gw",
        "conditions": [
            {"type": t, "status": s, "reason": "R", "message": "m", "observedGeneration": g}
            for t, (s, g) in conditions.items()
        ],
    }


def test_only_our_parent_entries_at_the_route_generation_decide() -> None:
    now = datetime(2026, 11, 22, 10, 5, tzinfo=UTC)
    raw = parse_spec(spec())

    def verdict(*parents: dict[str, Any]) -> Acceptance:
        result = route_verdict(route(list(parents)), raw, now)
        assert result is not None
        return result.acceptance

    accepted = parent(Accepted=("True", 3), ResolvedRefs=("True", 3))
    assert verdict(accepted) == Acceptance.ACCEPTED
    assert verdict(parent(Accepted=("True", 3))) == Acceptance.ACCEPTED  # ResolvedRefs absent
    assert verdict(parent(Accepted=("True", 3), ResolvedRefs=("False", 3))) == Acceptance.REFUSED
    assert verdict(parent(Accepted=("False", 3))) == Acceptance.REFUSED
    # a refusal of an older generation, or of another listener or Gateway, says nothing here
    assert verdict(parent(Accepted=("False", 2))) == Acceptance.PENDING
    assert verdict(accepted, parent(section="http", Accepted=("False", 3))) == Acceptance.ACCEPTED
    assert verdict(accepted, parent(name="other", Accepted=("False", 3))) == Acceptance.ACCEPTED
    assert verdict(parent(name="other", Accepted=("True", 3))) == Acceptance.PENDING  # ours has none
    assert verdict(parent(Accepted=("True", 2))) == Acceptance.PENDING
    assert verdict() == Acceptance.NO_STATUS
    waiting = route_verdict(route([]), raw, datetime(2026, 11, 22, 10, 0, 29, tzinfo=UTC))
    assert waiting is not None and waiting.holds
    assert route_verdict(None, raw, now) is None


# --- draining: a revision the route leaves keeps running for the scale-down delay ---------


def test_a_rolled_back_candidate_keeps_its_replicas_for_the_strategy_delay_then_goes() -> None:
    strategy = {**CANARY, "scaleDownDelay": "45s"}
    world = stable_world(strategy=strategy, analysis=ANALYSIS)
    candidate = new_version(world)
    world.reconcile(1, PASS)
    world.reconcile(1, PASS)
    running = world.deployments[candidate]
    world.reconcile(1, FAIL)
    world.reconcile(44)  # 44s after the rollback
    assert world.deployments[candidate] == running  # not scaled up to full size, not down
    assert world.log[-1].requeue_after == 1
    world.reconcile(1)
    assert world.deployments[candidate] == 0


def test_a_scale_down_delay_of_zero_retires_the_old_revision_once_the_switch_is_seen() -> None:
    world = stable_world(strategy={"scaleDownDelay": "0s"})
    old = world.status["stable"]["revision"]
    new_version(world)
    world.settle()
    assert world.deployments[old] == 0


# --- model pods finish in-flight requests when they leave ---------------------------------


def pod_spec(**runtime: Any) -> dict[str, Any]:
    model = ModelSpec(name="fraud", version="1")
    server = RuntimeSpec.model_validate(
        {"image": "mlserver:1.7.1", "readinessPath": "/v2/models/digits/ready", **runtime}
    )
    deployment = revision_deployment(Owner(NAME, "risk", "uid"), "fraud-1-abc", {}, model, server, 2, 600)
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def test_model_pods_sleep_in_pre_stop_and_get_the_grace_period_to_match() -> None:
    default = pod_spec()
    (container,) = default["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/models/digits/ready"
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}
    assert default["terminationGracePeriodSeconds"] == 40
    longer = pod_spec(drainDelay="1m")
    assert longer["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"] == 60
    assert longer["terminationGracePeriodSeconds"] == 90
    assert pod_spec(drainDelay="1500ms")["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"] == 2
    off = pod_spec(drainDelay="0s")
    assert "lifecycle" not in off["containers"][0] and off["terminationGracePeriodSeconds"] == 30
    asked = pod_spec(podTemplate={"spec": {"terminationGracePeriodSeconds": 120}})
    assert asked["terminationGracePeriodSeconds"] == 120  # the pod template may ask for its own
    short = pod_spec(drainDelay="0s", podTemplate={"spec": {"terminationGracePeriodSeconds": 5}})
    assert short["terminationGracePeriodSeconds"] == 5
    cut = pod_spec(podTemplate={"spec": {"terminationGracePeriodSeconds": 5}})
    assert cut["terminationGracePeriodSeconds"] == 10  # never less than the preStop sleep


def test_an_unset_drain_delay_leaves_the_revision_name_as_it_was() -> None:
    model = ModelSpec(name="fraud", version="1")
    unset = RuntimeSpec(image="server:1")
    assert "drainDelay" not in revision_source(model, unset)["runtime"]
    assert revision_name(NAME, revision_source(model, unset)) != revision_name(
        NAME, revision_source(model, RuntimeSpec(image="server:1", drain_delay="20s"))
    )


# --- the rule as a property: random rollouts against a gateway that changes its mind ------


class RouteAcceptanceMachine(RuleBasedStateMachine):
    """Canary rollouts, analysis verdicts and a gateway that accepts, refuses, lags or never answers.

    After every reconcile that began on a route the gateway refused or had
    not accepted for its generation: the stable revision is the same, no
    candidate got more live traffic (weight or mirror), and no revision was
    scaled down or deleted. After every reconcile: a revision is scaled down
    or deleted only ``scaleDownDelay`` (30s) or more after the last status
    that gave it live traffic.
    """

    def __init__(self) -> None:
        super().__init__()
        strategy = {**CANARY, "shadow": {"percent": 50, "duration": "20s"}}
        self.world = stable_world(strategy=strategy, analysis=ANALYSIS)
        self.last_traffic: dict[str, datetime] = {}

    @rule(gateway=st.sampled_from(["accept", "refuse", "lag", None]))
    def gateway_answers(self, gateway: str | None) -> None:
        self.world.gateway = gateway

    @rule(version=st.sampled_from(["1.0.0", "2.0.0", "3.0.0"]))
    def new_version(self, version: str) -> None:
        self.world.edit(model={"name": "fraud-detector", "version": version})

    @rule(seconds=st.integers(1, 60), verdict=st.sampled_from([PASS, FAIL, None]))
    def reconcile(self, seconds: int, verdict: Inputs | None) -> None:
        world = self.world
        before = {
            t["revision"]: t["weight"] + (t.get("mirrorPercent") or 0)
            for t in world.status.get("traffic", [])
        }
        stable_before = (world.status.get("stable") or {}).get("revision")
        route = world.route_status()
        held = world.gateway is not None and route is not None
        held = held and any(p.acceptance in (Acceptance.REFUSED, Acceptance.PENDING) for p in route.parents)
        decided = world.reconcile(seconds, verdict)
        world.ready_all()  # readiness is not the point here: every revision gets Ready a round later
        retired = [name for name, _ in decided.scale] + [
            r.name for r in decided.delete if r.kind == "Deployment"
        ]
        for name in retired:
            if name in self.last_traffic:
                drained = (world.now - self.last_traffic[name]).total_seconds()
                assert drained >= 30, f"{name} retired {drained:.0f}s after its last live traffic"
        for share in world.status.get("traffic", []):
            self.last_traffic[share["revision"]] = world.now
        if not held:
            return
        assert (world.status.get("stable") or {}).get("revision") == stable_before, "promoted while held"
        for share in world.status.get("traffic", []):
            if share["role"] == "candidate":
                now = share["weight"] + (share.get("mirrorPercent") or 0)
                assert now <= before.get(share["revision"], 0), "traffic moved while held"
        assert decided.scale == (), "scaled a revision down while held"
        assert not any(r.kind == "Deployment" for r in decided.delete), "deleted a revision while held"


TestRouteAcceptanceMachine = RouteAcceptanceMachine.TestCase
TestRouteAcceptanceMachine.settings = settings(
    max_examples=examples(60),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_observing_reads_the_httproute_status_from_the_watch_cache_and_ignores_a_virtualservice() -> None:

    owner = Owner(NAME, "risk", "uid")
    split = Split((Backend("stable", NAME, 100),))
    subject = Subject(name=NAME, namespace="risk", uid="uid", generation=1, spec={}, status={})
    refused = {"Accepted": ("True", 2), "ResolvedRefs": ("False", 2)}
    httproute = render_route(owner, parse_spec(spec()), split)
    assert httproute is not None
    store = Store()
    store.put(
        {
            **httproute,
            "metadata": {**httproute["metadata"], "generation": 2, "resourceVersion": "5"},
            "status": {"parents": [{**parent(**refused), "parentRef": {"name": "public"}}]},
        }
    )
    observed = observe(store, subject)
    assert observed.route is not None and observed.route.generation == 2
    (only,) = observed.route.parents
    assert (only.parent, only.acceptance, only.condition) == (
        "risk/public",
        Acceptance.REFUSED,
        "ResolvedRefs",
    )

    virtualservice = render_route(owner, parse_spec(spec(router="istio")), split)
    assert virtualservice is not None
    istio = Store()
    istio.put({**virtualservice, "metadata": {**virtualservice["metadata"], "resourceVersion": "6"}})
    assert observe(istio, subject).route is None
