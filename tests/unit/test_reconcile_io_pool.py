"""Slow I/O never holds a reconcile: the pool runs it, caps each ModelDeployment, hands results over once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest
from planner_world import World, spec
from prometheus_client import REGISTRY

from modeldeploy.analysis.outbound import EgressPolicy, Outbound
from modeldeploy.api import VerdictKind
from modeldeploy.kube.client import KubeClient
from modeldeploy.plan.inputs import Subject
from modeldeploy.plan.planner import plan
from modeldeploy.providers import OperatorConfig
from modeldeploy.reconcile.io_pool import MAX_UNTAKEN, IoPool, Plan
from modeldeploy.reconcile.measure import Measurer

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
INLINE = OperatorConfig(inline_providers=True)  # the test Prometheus is written into the spec
LOOPBACK = Outbound(EgressPolicy.parse(["127.0.0.0/8"]))
ANALYSIS = {"interval": "5s", "metrics": [{"name": "error-rate", "query": "errors", "max": 0.05}]}


class Woken:
    def __init__(self) -> None:
        self.calls: list[tuple[Hashable, bool]] = []
        self.event = threading.Event()

    def __call__(self, owner: Hashable, urgent: bool) -> None:
        self.calls.append((owner, urgent))
        self.event.set()


def wait_for(probe: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_first_ask_starts_the_job_and_its_end_wakes_the_owner_who_takes_the_result_once() -> None:
    woken = Woken()
    pool = IoPool(workers=2, per_owner=1, notify=woken)
    runs: list[int] = []

    def work() -> str:
        runs.append(1)
        return "measured"

    assert pool.take("a", "query 1", work) is None
    assert woken.event.wait(5)
    assert woken.calls == [("a", False)]
    assert pool.take("a", "query 1", work) == "measured"
    assert runs == [1]
    assert pool.take("a", "query 1", work) is None  # taken: asking again measures again
    wait_for(lambda: len(runs) == 2)
    pool.shutdown()


def test_asking_again_while_the_job_runs_starts_nothing() -> None:
    release = threading.Event()
    runs: list[int] = []

    def work() -> int:
        runs.append(1)
        release.wait(5)
        return 1

    pool = IoPool(workers=4, per_owner=4)
    for _ in range(5):
        assert pool.take("a", "warm-up r1", work) is None
    assert pool.pending("a")
    release.set()
    wait_for(lambda: not pool.pending("a"))
    assert runs == [1]
    pool.shutdown()


def test_a_deployment_with_its_cap_hung_delays_nobody_else() -> None:
    hang = threading.Event()
    started: list[str] = []
    woken = Woken()

    def hung(name: str) -> Any:
        def work() -> None:
            started.append(name)
            hang.wait(10)

        return work

    pool = IoPool(workers=3, per_owner=2, notify=woken)
    pool.take("hostile", "webhook", hung("webhook"))
    pool.take("hostile", "prometheus", hung("prometheus"))
    pool.take("hostile", "warm-up", hung("warm-up"))  # over its cap: not started, not queued
    wait_for(lambda: len(started) == 2)
    assert sorted(started) == ["prometheus", "webhook"]

    before = time.monotonic()
    assert pool.take("fifth", "fallback trigger", lambda: "healthy", urgent=True) is None
    assert woken.event.wait(2)
    assert time.monotonic() - before < 1
    assert woken.calls == [("fifth", True)]
    assert pool.take("fifth", "fallback trigger", lambda: "x") == "healthy"
    assert "warm-up" not in started
    hang.set()
    pool.shutdown()


def test_an_error_in_the_job_is_raised_to_the_reconcile_that_takes_it() -> None:
    woken = Woken()
    pool = IoPool(notify=woken)

    def broken() -> None:
        raise RuntimeError("ConfigMap read failed")

    pool.take("a", "warm-up", broken)
    assert woken.event.wait(5)
    with pytest.raises(RuntimeError, match="ConfigMap read failed"):
        pool.take("a", "warm-up", broken)
    pool.shutdown()


def test_results_nobody_takes_expire_and_forget_drops_an_owners_results() -> None:
    woken = Woken()
    pool = IoPool(notify=woken, keep_seconds=0.05)
    pool.take("a", "analysis due t1", lambda: 1)
    assert woken.event.wait(5)
    time.sleep(0.1)
    assert pool.take("a", "analysis due t1", lambda: 2) is None  # expired: measured afresh
    wait_for(lambda: len(woken.calls) == 2)
    pool.forget("a")
    assert pool.take("a", "analysis due t1", lambda: 3) is None
    pool.shutdown()


class OneBytePerSecond:
    """A Prometheus that answers 200 and then one byte a second: no read ever times out."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                while not owner.stop.wait(1):
                    self.wfile.write(b" ")
                    self.wfile.flush()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


class Instant:
    def __init__(self, value: float) -> None:
        self.queries = 0
        owner = self
        body = json.dumps(
            {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, str(value)]}]},
            }
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.queries += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_prometheus() -> Iterator[OneBytePerSecond]:
    server = OneBytePerSecond()
    yield server
    server.close()


def measurer_on(pool: IoPool, **clocks: Any) -> Measurer:
    """A Measurer on ``pool`` for the test Prometheus written into the spec, with the clocks given."""
    return Measurer(cast(KubeClient, None), INLINE, LOOPBACK, "http://{service}", None, pool, **clocks)


def measurer_in_step(pool: IoPool) -> Measurer:
    """A Measurer on ``pool`` whose round k's queries run at NOW + 5 k s, each next round falling due
    0.1 s (real time) after the last one started: rounds one after another, on the test's clock."""
    stamps: list[datetime] = []

    def clock() -> datetime:
        stamps.append(NOW + timedelta(seconds=5 * len(stamps)))
        return stamps[-1]

    return measurer_on(pool, clock=clock, exact_clock=lambda: stamps[-1] + timedelta(seconds=4.9))


def canary(
    prometheus: str,
    pause: str | None = "10m",
    analysis: list[dict[str, Any]] | None = None,
    failure_limit: int = 1,
) -> Subject:
    started = "2026-12-01T11:59:00Z"
    return Subject.from_body(
        {
            "metadata": {"name": "fraud", "namespace": "risk", "generation": 2},
            "spec": spec(
                "2.0.0",
                strategy={"canary": {"steps": [{"weight": 20, **({"pause": pause} if pause else {})}]}},
                analysis={
                    "interval": "5s",
                    "failureLimit": failure_limit,
                    "prometheus": {"address": prometheus},
                    "metrics": [{"name": "error-rate", "query": "errors", "max": 0.05}],
                },
            ),
            "status": {
                "stable": {"revision": "fraud-1", "version": "1.0.0", "since": started},
                "candidate": {
                    "revision": "fraud-2",
                    "version": "2.0.0",
                    "stage": "Canary",
                    "step": 0,
                    "weight": 20,
                    "stageStartedAt": started,
                },
                "analysis": analysis or [],
            },
        }
    )


def test_a_prometheus_answering_one_byte_a_second_does_not_hold_the_reconcile(
    slow_prometheus: OneBytePerSecond,
) -> None:
    pool = IoPool(workers=4, per_owner=2)
    measurer = measurer_on(pool)
    before = time.monotonic()
    inputs = measurer.inputs(canary(slow_prometheus.url), NOW)
    assert time.monotonic() - before < 0.5
    assert inputs.analysis is None  # not measured this round: the planner holds
    assert inputs.verdict is not None and inputs.verdict.kind == "Pending"
    assert measurer.pending(canary(slow_prometheus.url))
    pool.shutdown()


@pytest.mark.parametrize(
    ("error_rate", "verdict", "urgent"),
    [(0.3, "Fail", True), (0.01, "Pass", False)],
    ids=["rolls back: woken urgently", "passes: woken normally"],
)
def test_a_finished_measurement_is_handed_to_the_planner_at_the_reconcile_it_triggers(
    error_rate: float, verdict: str, urgent: bool
) -> None:
    """Recorded as measured when its query ran; a result that rolls back jumps the work queue."""
    prometheus = Instant(error_rate)
    woken = Woken()
    pool = IoPool(workers=4, per_owner=2, notify=woken)
    queried_at = datetime(2026, 12, 1, 11, 59, 57, tzinfo=UTC)  # the take's reconcile runs 3 s later
    measurer = measurer_on(
        pool,
        clock=lambda: queried_at,
        exact_clock=lambda: NOW,  # the next round is planned 2 s away, after this test
    )
    subject = canary(prometheus.url)
    try:
        assert measurer.inputs(subject, NOW).analysis is None
        assert woken.event.wait(15)
        assert woken.calls == [(("risk", "fraud"), urgent)]
        inputs = measurer.inputs(subject, NOW)
        assert inputs.analysis is not None
        assert [(r.metric, r.value, r.measured_at) for r in inputs.analysis] == [
            ("error-rate", error_rate, queried_at)
        ]
        assert inputs.verdict is not None and inputs.verdict.kind == verdict
        assert not measurer.pending(subject)
    finally:
        prometheus.close()
        pool.shutdown()


def test_a_result_that_cannot_be_judged_wakes_its_owner_normally() -> None:
    woken = Woken()
    pool = IoPool(workers=1, per_owner=1, notify=woken)

    def broken(value: str) -> bool:
        raise ValueError(value)

    assert pool.take("a", "query", lambda: "odd", wake_urgently=broken) is None
    assert woken.event.wait(5)
    assert woken.calls == [("a", False)]
    assert pool.take("a", "query", lambda: "odd") == "odd"  # the result is not lost
    pool.shutdown()


def test_without_a_pool_measurements_run_inline() -> None:
    prometheus = Instant(0.01)
    try:
        measurer = Measurer(cast(KubeClient, None), INLINE, LOOPBACK, "http://{service}")
        inputs = measurer.inputs(canary(prometheus.url), NOW)
        assert inputs.analysis is not None and inputs.verdict is not None
        assert inputs.verdict.kind == "Pass"
    finally:
        prometheus.close()


def test_a_namespace_is_capped_over_all_its_deployments_and_each_ended_job_starts_one_in_its_line() -> None:
    release = {f"md-{i}": threading.Event() for i in range(10)}
    started: list[str] = []
    woken = Woken()

    def work_of(name: str) -> Any:
        def work() -> str:
            started.append(name)
            release[name].wait(10)
            return name

        return work

    def ask(tenant: str, name: str, urgent: bool = False) -> None:
        assert pool.take((tenant, name), "query", work_of(name), urgent=urgent) is None

    pool = IoPool(workers=8, per_owner=2, per_namespace=3, notify=woken)
    for name in ("md-0", "md-1", "md-2"):
        ask("tenant-a", name)
    ask("tenant-a", "md-9")  # over the namespace's cap: in its line
    ask("tenant-a", "md-8")
    ask("tenant-a", "md-7", urgent=True)  # a fallback trigger: first in the line
    ask("tenant-a", "md-6")
    release["md-5"].set()
    ask("tenant-b", "md-5")  # another tenant is not held by tenant-a's line
    wait_for(lambda: len(started) == 4)
    assert sorted(started) == ["md-0", "md-1", "md-2", "md-5"]
    assert pool.holds(("tenant-a", "md-9"), "query") and pool.pending(("tenant-a", "md-9"))
    ask("tenant-a", "md-9")  # asked again while in line: still once
    pool.forget(("tenant-a", "md-6"))  # gone: its job leaves the line

    for ended, next_up in (("md-0", "md-7"), ("md-1", "md-9"), ("md-2", "md-8")):
        release[ended].set()
        wait_for(lambda next_up=next_up: next_up in started)  # type: ignore[misc]
        time.sleep(0.05)
        assert started[-1] == next_up and len(started) == len(set(started))
    # Each end woke its own owner only; nobody in line was woken to ask again.
    assert {owner for owner, _ in woken.calls} <= {("tenant-a", n) for n in ("md-0", "md-1", "md-2")} | {
        ("tenant-b", "md-5")
    }
    for name in ("md-7", "md-9", "md-8"):
        release[name].set()
    wait_for(lambda: ("tenant-a", "md-8") in {owner for owner, _ in woken.calls})
    assert pool.take(("tenant-a", "md-8"), "query", work_of("md-8")) == "md-8"
    time.sleep(0.05)
    assert "md-6" not in started and not pool.pending(("tenant-a", "md-6"))
    pool.shutdown()


def test_urgent_jobs_go_first_when_jobs_wait_for_a_thread() -> None:
    gate = threading.Event()
    order: list[str] = []

    def job(name: str) -> Any:
        def work() -> None:
            if name == "blocker":
                gate.wait(5)
            order.append(name)

        return work

    pool = IoPool(workers=1, per_owner=4, per_namespace=8)
    pool.take(("a", "x"), "blocker", job("blocker"))
    wait_for(lambda: pool.pending(("a", "x")))
    time.sleep(0.05)
    pool.take(("b", "y"), "monitoring", job("monitoring"))
    pool.take(("c", "z"), "fallback trigger", job("fallback trigger"), urgent=True)
    gate.set()
    wait_for(lambda: len(order) == 3)
    assert order == ["blocker", "fallback trigger", "monitoring"]
    pool.shutdown()


def test_the_pool_says_which_jobs_it_holds_until_their_result_is_taken() -> None:
    release = threading.Event()
    woken = Woken()
    pool = IoPool(notify=woken)
    assert not pool.holds("a", "retrain webhook 1")
    pool.take("a", "retrain webhook 1", lambda: release.wait(5))
    assert pool.holds("a", "retrain webhook 1")  # running: a reconcile records no second start
    release.set()
    assert woken.event.wait(5)
    assert pool.holds("a", "retrain webhook 1")  # finished, not taken
    assert pool.take("a", "retrain webhook 1", lambda: False) is True
    assert not pool.holds("a", "retrain webhook 1")
    pool.shutdown()


def test_a_planned_job_starts_by_itself_at_its_time_and_its_end_wakes_the_owner() -> None:
    woken = Woken()
    pool = IoPool(workers=2, per_owner=1, notify=woken)
    started: list[float] = []
    planned_at = time.monotonic()
    pool.plan("a", "analysis due t2", lambda: started.append(time.monotonic()) or "measured", delay=0.3)
    assert pool.planned("a") == "analysis due t2"
    time.sleep(0.1)
    assert not started and not pool.pending("a")
    assert woken.event.wait(5)
    assert started[0] - planned_at >= 0.3
    assert woken.calls == [("a", False)]
    assert pool.planned("a") is None
    assert pool.take("a", "analysis due t2", lambda: "again") == "measured"
    pool.shutdown()


def test_a_reconcile_asking_before_the_planned_time_starts_the_job_once() -> None:
    woken = Woken()
    pool = IoPool(workers=2, per_owner=2, notify=woken)
    runs: list[str] = []

    def work() -> str:
        runs.append("ran")
        return "measured"

    pool.plan("a", "analysis due t2", work, delay=0.2)
    assert pool.take("a", "analysis due t2", work) is None  # the reconcile got there first
    assert pool.planned("a") is None
    wait_for(lambda: bool(woken.calls))
    assert pool.take("a", "analysis due t2", work) == "measured"
    time.sleep(0.4)  # past the planned time: nothing starts again
    assert runs == ["ran"] and len(woken.calls) == 1
    pool.shutdown()


def test_a_newer_plan_replaces_the_owners_last_and_forget_drops_it() -> None:
    woken = Woken()
    pool = IoPool(workers=2, per_owner=2, notify=woken)
    pool.plan("a", "analysis due t2", lambda: "old", delay=0.1)
    pool.plan("a", "analysis due t3", lambda: "new", delay=0.2)
    pool.plan("b", "analysis due t2", lambda: "b", delay=0.1)
    pool.forget("b")
    wait_for(lambda: bool(woken.calls))
    time.sleep(0.3)
    assert woken.calls == [("a", False)]
    assert pool.take("a", "analysis due t2", lambda: "x") is None  # never started: a reconcile starts it
    assert pool.take("a", "analysis due t3", lambda: "x") == "new"
    pool.shutdown()


def test_a_planned_start_refused_by_the_owners_cap_wakes_the_owner_to_ask_again() -> None:
    hang = threading.Event()
    woken = Woken()
    pool = IoPool(workers=2, per_owner=1, notify=woken)
    pool.take("a", "webhook", lambda: hang.wait(10))
    pool.plan("a", "analysis due t2", lambda: "measured", delay=0.05)
    assert woken.event.wait(5)
    assert woken.calls == [("a", False)]
    assert pool.pending("a") and pool.planned("a") is None
    hang.set()
    pool.shutdown()


class Chain:
    """Jobs that each plan the next, numbered; ``stop_after`` ends the chain by its own result."""

    def __init__(
        self,
        stop_after: int | None = None,
        broken_at: int | None = None,
        quiet: Callable[[int], bool] | None = None,
        urgent: Callable[[int], bool] | None = None,
    ) -> None:
        self.stop_after = stop_after
        self.broken_at = broken_at
        self.quiet = quiet
        self.urgent = urgent
        self.ran: list[int] = []

    def plan(self, n: int) -> Plan:
        def work() -> int:
            self.ran.append(n)
            return n

        def then(value: int) -> Plan | None:
            if value == self.broken_at:
                raise RuntimeError("cannot tell what follows")
            return None if value == self.stop_after else self.plan(value + 1)

        return Plan(f"round {n}", work, 0.02, wake_urgently=self.urgent, then=then, quiet=self.quiet)

    def start(self, pool: IoPool, owner: Hashable = "a") -> None:
        first = self.plan(1)
        pool.plan(owner, first.job, first.work, first.delay, first.wake_urgently, first.then, first.quiet)


def test_a_planned_job_plans_what_follows_it_before_it_wakes_its_owner() -> None:
    planned_when_woken: list[str | None] = []
    pool: IoPool

    def notify(owner: Hashable, urgent: bool) -> None:
        planned_when_woken.append(pool.planned(owner))

    pool = IoPool(workers=2, per_owner=1, notify=notify)
    chain = Chain()
    chain.start(pool)
    try:
        wait_for(lambda: len(chain.ran) >= 2)
        assert planned_when_woken[0] == "round 2"  # the owner's reconcile finds the next round planned
        assert pool.take("a", "round 1", lambda: -1) == 1
        assert pool.take("a", "round 2", lambda: -1) == 2
    finally:
        pool.shutdown()


def test_a_chain_nobody_takes_stops_after_max_untaken_and_a_take_keeps_it_going() -> None:
    woken = Woken()
    pool = IoPool(workers=2, per_owner=1, notify=woken)
    chain = Chain()
    chain.start(pool)
    try:
        wait_for(lambda: len(chain.ran) == 1 + MAX_UNTAKEN)
        time.sleep(0.3)
        assert chain.ran == list(range(1, 2 + MAX_UNTAKEN))  # the first, then MAX_UNTAKEN successors
        assert pool.planned("a") is None
        # The owner's reconcile takes the rounds it was woken for; the chain goes on from the last.
        for n in chain.ran[:]:
            assert pool.take("a", f"round {n}", lambda: -1) == n
        assert pool.take("a", f"round {2 + MAX_UNTAKEN}", chain.plan(2 + MAX_UNTAKEN).work) is None
        # ... started by the reconcile, not by a plan: nothing follows it until a reconcile plans.
        wait_for(lambda: len(chain.ran) == 2 + MAX_UNTAKEN)
        time.sleep(0.2)
        assert len(chain.ran) == 2 + MAX_UNTAKEN
    finally:
        pool.shutdown()


def test_a_planned_round_over_its_namespaces_cap_waits_in_line_and_its_chain_goes_on() -> None:
    hang = threading.Event()
    woken = Woken()
    pool = IoPool(workers=4, per_owner=1, per_namespace=1, notify=woken)
    pool.take(("ns", "busy"), "webhook", lambda: hang.wait(10))
    chain = Chain(stop_after=2)
    chain.start(pool, owner=("ns", "md"))
    try:
        time.sleep(0.2)  # its time has come and gone: in line, and its owner is not woken to ask again
        assert chain.ran == [] and woken.calls == []
        assert pool.pending(("ns", "md")) and pool.planned(("ns", "md")) is None
        hang.set()
        wait_for(lambda: chain.ran == [1, 2])  # started when the webhook ended; it planned round 2
        wait_for(lambda: ("ns", "md") in {owner for owner, _ in woken.calls})
        assert pool.take(("ns", "md"), "round 1", lambda: -1) == 1
    finally:
        pool.shutdown()


def test_a_taken_result_of_the_chain_lets_it_run_on() -> None:
    woken = Woken()
    pool = IoPool(workers=2, per_owner=1, notify=woken)
    chain = Chain(stop_after=8)
    chain.start(pool)
    taken: list[int] = []
    try:
        deadline = time.monotonic() + 10
        while len(taken) < 8 and time.monotonic() < deadline:  # a reconcile that keeps up
            for n in chain.ran[len(taken) :]:
                if pool.take("a", f"round {n}", lambda: -1) == n:
                    taken.append(n)
            time.sleep(0.01)
        assert taken == list(range(1, 9))
        time.sleep(0.2)
        assert chain.ran == list(range(1, 9))  # round 8's result said nothing follows
    finally:
        pool.shutdown()


def test_a_quiet_result_wakes_nobody_and_is_taken_in_order_with_the_next_one_that_does() -> None:
    woken = Woken()
    pool = IoPool(workers=2, per_owner=1, notify=woken)
    # Rounds 1, 2 and 4 have nothing to act on; round 5 says so too, but nothing follows it.
    chain = Chain(stop_after=5, quiet=lambda n: n != 3)
    quiet_before = REGISTRY.get_sample_value("modeldeploy_slow_io_quiet_total") or 0.0
    chain.start(pool)
    try:
        wait_for(lambda: len(woken.calls) == 2)
        time.sleep(0.2)
        assert chain.ran == [1, 2, 3, 4, 5]
        assert woken.calls == [("a", False), ("a", False)]  # by round 3, and by the last
        assert REGISTRY.get_sample_value("modeldeploy_slow_io_quiet_total") == quiet_before + 3
        for n in chain.ran:  # every result is there for the reconcile, in order
            assert pool.take("a", f"round {n}", lambda: -1) == n
    finally:
        pool.shutdown()


def test_quiet_results_do_not_count_towards_the_untaken_that_stop_a_chain() -> None:
    woken = Woken()
    pool = IoPool(workers=2, per_owner=1, notify=woken)
    last = 2 + 2 * MAX_UNTAKEN  # far more successors than a chain of wake-ups nobody takes gets
    chain = Chain(stop_after=last, quiet=lambda n: True)
    chain.start(pool)
    try:
        wait_for(lambda: len(woken.calls) == 1)
        time.sleep(0.2)
        assert chain.ran == list(range(1, last + 1))
        assert woken.calls == [("a", False)]
    finally:
        pool.shutdown()


@pytest.mark.parametrize("why", ["urgent", "cannot tell"])
def test_a_result_that_is_urgent_or_whose_quiet_cannot_be_told_wakes_its_owner(why: str) -> None:
    woken = Woken()
    pool = IoPool(workers=2, per_owner=1, notify=woken)

    def quiet(n: int) -> bool:
        if why == "cannot tell" and n == 2:
            raise ValueError("no record to compare with")
        return True

    chain = Chain(stop_after=3, quiet=quiet, urgent=(lambda n: n == 2) if why == "urgent" else None)
    chain.start(pool)
    try:
        wait_for(lambda: len(woken.calls) == 2)
        time.sleep(0.2)
        assert chain.ran == [1, 2, 3]
        assert woken.calls == [("a", why == "urgent"), ("a", False)]  # by round 2, and by the last
    finally:
        pool.shutdown()


@pytest.mark.parametrize("stop", ["a newer plan", "forget", "broken then"])
def test_a_chain_stops_when_its_owner_plans_anew_is_forgotten_or_cannot_tell_what_follows(stop: str) -> None:
    woken = Woken()
    pool = IoPool(workers=2, per_owner=1, notify=woken)
    chain = Chain(broken_at=2 if stop == "broken then" else None)
    release = threading.Event()
    first = chain.plan(1)

    def held() -> int:
        release.wait(5)
        return first.work()

    pool.plan("a", first.job, held, 0.0, then=first.then)
    try:
        wait_for(lambda: pool.pending("a"))
        if stop == "a newer plan":
            pool.plan("a", "another stage's round", lambda: "other", 0.0)
        elif stop == "forget":
            pool.forget("a")
        release.set()
        wait_for(lambda: 1 in chain.ran and not pool.pending("a"))
        time.sleep(0.3)
        assert chain.ran == ([1, 2] if stop == "broken then" else [1])
        assert pool.planned("a") is None
    finally:
        pool.shutdown()


def recorded(subject: Subject, inputs: Any) -> Subject:
    """``subject`` with the results ``inputs`` carried written into its status, as the planner writes them."""
    results = [r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in inputs.analysis]
    return replace(subject, status={**subject.status, "analysis": results})


def test_the_next_round_of_analysis_starts_on_the_pools_timer_and_the_reconcile_at_its_time_takes_it() -> (
    None
):
    """Taking a round plans the next at its due time; the reconcile then finds it measured, not started."""
    prometheus = Instant(0.01)
    woken = Woken()
    pool = IoPool(workers=4, per_owner=2, notify=woken)
    queried_at = NOW - timedelta(seconds=3)
    due = queried_at + timedelta(seconds=5)  # interval 5s
    measurer = measurer_on(
        pool,
        clock=lambda: queried_at if prometheus.queries < 1 else due,
        exact_clock=lambda: due - timedelta(seconds=0.3),  # the next round falls due in 0.3 s
    )
    subject = canary(prometheus.url)
    try:
        assert measurer.inputs(subject, NOW).analysis is None
        assert woken.event.wait(15)
        woken.event.clear()
        first = measurer.inputs(subject, NOW)
        assert first.analysis is not None and first.analysis[0].measured_at == queried_at
        assert pool.planned(("risk", "fraud")) is not None
        assert first.analysis_planned == due  # the planner wakes for it only as a backstop
        assert prometheus.queries == 1
        wait_for(lambda: prometheus.queries == 2)  # the planned round ran, no reconcile asked for it
        wait_for(lambda: pool.planned(("risk", "fraud")) is not None)  # ... and planned the third
        # It passed again, as status says: nothing to do, so it woke nobody.
        assert len(woken.calls) == 1
        second = measurer.inputs(recorded(subject, first), due)
        assert second.analysis is not None
        assert second.analysis[0].measured_at == due
        assert prometheus.queries == 2  # handed over, not started again
        assert len(woken.calls) == 1
    finally:
        prometheus.close()
        pool.shutdown()


def test_rounds_keep_their_interval_while_no_reconcile_takes_them_and_a_late_one_takes_each_in_order() -> (
    None
):
    """Behind a long work queue: the pool runs round after round on time; the reconcile, when its
    turn comes, folds every round that ended into status, in order; a round that rolls back wakes
    it urgently and nothing is planned after it."""
    prometheus = Instant(0.3)  # every round fails; the eighth failure rolls back
    woken = Woken()
    pool = IoPool(workers=4, per_owner=2, notify=woken)
    measurer = measurer_in_step(pool)
    subject = canary(prometheus.url, failure_limit=8)
    owner = ("risk", "fraud")
    try:
        assert measurer.inputs(subject, NOW).analysis is None
        wait_for(lambda: len(woken.calls) == 1)
        first = measurer.inputs(subject, NOW)
        assert first.analysis is not None and first.analysis[0].failures == 1
        # No reconcile takes anything now: the chain runs rounds 1 to MAX_UNTAKEN + 1, then stops.
        wait_for(lambda: prometheus.queries == 2 + MAX_UNTAKEN)
        time.sleep(0.4)
        assert prometheus.queries == 2 + MAX_UNTAKEN and pool.planned(owner) is None
        assert not any(urgent for _, urgent in woken.calls)

        late = measurer.inputs(recorded(subject, first), NOW + timedelta(seconds=22))
        assert late.analysis is not None
        assert late.analysis[0].failures == 2 + MAX_UNTAKEN  # rounds 0 to 4, each counted once
        assert late.analysis[0].measured_at == NOW + timedelta(seconds=5 * (1 + MAX_UNTAKEN))
        assert late.verdict is not None and late.verdict.kind == VerdictKind.HOLD  # measuring again
        assert late.analysis_planned == NOW + timedelta(seconds=5 * (2 + MAX_UNTAKEN))

        # The chain goes on from there until the eighth failure, which wakes the owner urgently.
        wait_for(lambda: prometheus.queries == 8)
        wait_for(lambda: woken.calls[-1] == (owner, True))
        time.sleep(0.4)
        assert prometheus.queries == 8 and pool.planned(owner) is None
        rolled_back = measurer.inputs(recorded(subject, late), NOW + timedelta(seconds=40))
        assert rolled_back.analysis is not None and rolled_back.analysis[0].failures == 8
        assert rolled_back.verdict is not None and rolled_back.verdict.kind == VerdictKind.FAIL
        assert prometheus.queries == 8
    finally:
        prometheus.close()
        pool.shutdown()


def test_passing_rounds_that_repeat_status_wake_nobody_until_its_record_is_old_enough_to_save() -> None:
    """The pool runs round after round; only the one that finds status's record ANALYSIS_SAVE_EVERY
    (30 s) old wakes the reconcile, which takes them all and writes it; then quiet again."""
    prometheus = Instant(0.01)
    woken = Woken()
    queries_when_woken: list[int] = []

    def notify(owner: Hashable, urgent: bool) -> None:
        queries_when_woken.append(prometheus.queries)
        woken(owner, urgent)

    pool = IoPool(workers=4, per_owner=2, notify=notify)
    measurer = measurer_in_step(pool)
    subject = canary(prometheus.url)
    try:
        assert measurer.inputs(subject, NOW).analysis is None
        wait_for(lambda: len(woken.calls) == 1)
        first = measurer.inputs(subject, NOW)  # the stage's first result: written
        assert first.analysis is not None and not first.analysis_unsaved
        # Rounds 1 to 5 (5 to 25 s) repeat it; round 6 (30 s) finds it 30 s old and wakes.
        wait_for(lambda: len(woken.calls) == 2)
        assert queries_when_woken[1] == 7 and woken.calls[1] == (("risk", "fraud"), False)
        saved = measurer.inputs(recorded(subject, first), NOW + timedelta(seconds=31))
        assert saved.analysis is not None and not saved.analysis_unsaved
        assert saved.analysis[0].measured_at == NOW + timedelta(seconds=30)
        # Against the record just written, the next wake-up is round 12's (60 s).
        wait_for(lambda: len(woken.calls) == 3)
        assert queries_when_woken[2] == 13
    finally:
        prometheus.close()
        pool.shutdown()


@pytest.mark.parametrize(
    ("error_rate", "pause", "planned"),
    [(0.3, "10m", False), (0.01, "6s", False), (0.01, "10m", True), (0.01, None, True)],
    ids=["rolls back", "the stage ends first", "the stage goes on", "until someone promotes"],
)
def test_the_next_round_is_planned_only_while_the_stage_goes_on_measuring(
    error_rate: float, pause: str | None, planned: bool
) -> None:
    prometheus = Instant(error_rate)
    woken = Woken()
    pool = IoPool(workers=4, per_owner=2, notify=woken)
    later = NOW + timedelta(seconds=58)  # the stage started at 11:59:00; this round runs at 12:00:58
    measurer = measurer_on(
        pool,
        clock=lambda: later,
        exact_clock=lambda: later,  # the next round is 5 s away: still planned when looked at
    )
    subject = canary(prometheus.url, pause=pause)
    try:
        assert measurer.inputs(subject, later).analysis is None
        assert woken.event.wait(15)
        taken = measurer.inputs(subject, later)
        assert taken.analysis is not None
        assert (pool.planned(("risk", "fraud")) is not None) == planned
        assert (taken.analysis_planned is not None) == planned
        # a reconcile between the rounds (another child's event) is told the same
        assert (measurer.inputs(recorded(subject, taken), later).analysis_planned is not None) == planned
    finally:
        prometheus.close()
        pool.shutdown()


def test_a_round_planned_before_an_edit_of_the_spec_is_not_taken_after_it() -> None:
    prometheus = Instant(0.01)
    woken = Woken()
    pool = IoPool(workers=4, per_owner=2, notify=woken)
    measurer = measurer_on(pool, clock=lambda: NOW)
    subject = canary(prometheus.url)
    try:
        assert measurer.inputs(subject, NOW).analysis is None
        wait_for(lambda: len(woken.calls) == 1)
        taken = measurer.inputs(subject, NOW)  # plans the round due at 12:00:05 (at once: the past)
        wait_for(lambda: prometheus.queries == 2)  # passed again: quiet, it wakes nobody
        edited = replace(recorded(subject, taken), generation=subject.generation + 1)
        later = NOW + timedelta(seconds=5)
        assert measurer.inputs(edited, later).analysis is None  # measured afresh, with the edited spec
        wait_for(lambda: prometheus.queries == 3)
        assert measurer.inputs(recorded(subject, taken), later).analysis is not None  # unedited: taken
    finally:
        prometheus.close()
        pool.shutdown()


def passed_at(at: str, value: float = 0.01) -> dict[str, Any]:
    """status.analysis's record of a passing error-rate measured at ``at``."""
    return {"metric": "error-rate", "phase": "Successful", "value": value, "measuredAt": at}


@pytest.mark.parametrize(
    ("error_rate", "saved", "written"),
    [
        (0.01, [passed_at("2026-12-01T11:59:50Z")], False),  # passes again, status 10 s old: kept
        (0.01, [passed_at("2026-12-01T11:59:30Z")], True),  # status 30 s old: written
        (0.01, [], True),  # the stage's first result: written
        (0.3, [passed_at("2026-12-01T11:59:50Z")], True),  # fails: written at once
        (0.01, [{**passed_at("2026-12-01T11:59:50Z"), "phase": "Inconclusive", "inconclusive": 1}], True),
    ],
    ids=["passes again", "status 30 s old", "first", "fails", "was inconclusive"],
)
def test_a_round_that_repeats_status_is_kept_unwritten_for_a_while(
    error_rate: float, saved: list[dict[str, Any]], written: bool
) -> None:
    prometheus = Instant(error_rate)
    try:
        measurer = Measurer(cast(KubeClient, None), INLINE, LOOPBACK, "http://{service}")
        inputs = measurer.inputs(canary(prometheus.url, analysis=saved), NOW)
        assert inputs.analysis is not None and [r.measured_at for r in inputs.analysis] == [NOW]
        assert inputs.analysis_unsaved is not written
        assert inputs.verdict is not None
        # Kept: the verdict's message (which status.message carries) is status's record's, not new.
        assert ("0.01" in inputs.verdict.message or "0.3" in inputs.verdict.message) is written
    finally:
        prometheus.close()


def test_kept_rounds_are_planned_from_until_written_and_never_carried_into_another_stage() -> None:
    prometheus = Instant(0.01)
    try:
        measurer = Measurer(cast(KubeClient, None), INLINE, LOOPBACK, "http://{service}")
        subject = canary(prometheus.url, analysis=[passed_at("2026-12-01T11:59:50Z")])
        measurer.inputs(subject, NOW)
        # A second later, status unchanged: the kept round stands, not due again until NOW + 5 s.
        later = measurer.inputs(subject, NOW + timedelta(seconds=1))
        assert prometheus.queries == 1
        assert later.analysis is not None and [r.measured_at for r in later.analysis] == [NOW]
        assert later.analysis_unsaved
        # At NOW + 5 s the next round runs from the kept one (not from status's, due long ago).
        assert measurer.inputs(subject, NOW + timedelta(seconds=4)).analysis_unsaved
        assert prometheus.queries == 1
        due = measurer.inputs(subject, NOW + timedelta(seconds=5))
        assert prometheus.queries == 2 and due.analysis is not None
        assert [r.measured_at for r in due.analysis] == [NOW + timedelta(seconds=5)]
        # A spec edit (its queries may have changed): what was kept is dropped, measured again.
        edited = replace(subject, generation=subject.generation + 1)
        remeasured = measurer.inputs(edited, NOW + timedelta(seconds=6)).analysis
        assert prometheus.queries == 3 and remeasured is not None
        assert [r.measured_at for r in remeasured] == [NOW + timedelta(seconds=6)]
        measurer.forget(("risk", "fraud"))
        # The next step (a new stage start): what was kept for the last one is dropped.
        status = dict(subject.status)
        status["candidate"] = {**status["candidate"], "step": 1, "stageStartedAt": "2026-12-01T12:00:06Z"}
        status["analysis"] = []
        next_step = replace(subject, status=status)
        first = measurer.inputs(next_step, NOW + timedelta(seconds=6))
        assert prometheus.queries == 4 and first.analysis is not None and not first.analysis_unsaved
        # Deleted: nothing is kept.
        measurer.inputs(subject, NOW + timedelta(seconds=10))
        measurer.forget(("risk", "fraud"))
        assert measurer.inputs(subject, NOW + timedelta(seconds=11)).analysis is not None
        assert prometheus.queries == 6  # status's record (11:59:50) is due: measured again
    finally:
        prometheus.close()


def test_one_pass_parses_spec_and_status_once_for_the_measurer_and_the_planner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import modeldeploy.api.manifest as manifest

    world = World(spec(analysis=ANALYSIS))
    world.settle()
    world.edit(model={"name": "fraud-detector", "version": "2.0.0", "uri": "s3://m/2.0.0"})
    world.settle(rounds=2)  # a canary under analysis
    parsed: list[str] = []
    real = manifest._parse

    def counted(model: Any, raw: Any, prefix: Any) -> Any:
        parsed.append(model.__name__)
        return real(model, raw, prefix)

    monkeypatch.setattr(manifest, "_parse", counted)
    subject = world.subject()
    measured = Measurer(cast(KubeClient, None), INLINE, LOOPBACK, "http://{service}").inputs(subject, NOW)
    decided = plan(subject, world.observed(), NOW, measured)
    assert decided.status is not None and subject.parsed_status.candidate is not None
    assert sorted(parsed) == ["ModelDeploymentSpec", "ModelDeploymentStatus"]
    # The next pass reads the cache again: another Subject, parsed afresh.
    plan(world.subject(), world.observed(), NOW, measured)
    assert len(parsed) == 4
