"""Traffic safety end to end: a refused HTTPRoute holds traffic; a left revision drains.

The operator is the chart's pod on the real node; the revisions' pods stay on kwok nodes.
The routes name a parent no gateway serves (the real node's Traefik answers only for its
own Gateway), so the test writes the HTTPRoute's ``status.parents`` the way a controller
would (``kubectl patch --subresource=status``), for the route's current generation.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from typing import Any

import pytest

from kubetest import Release, apply, condition, fraud, get, md_status, wait_for, wait_phase
from modeldeploy_dev.cluster import LocalCluster

pytestmark = pytest.mark.usefixtures("operator")


@pytest.fixture(scope="module")
def cluster(real_cluster: LocalCluster) -> LocalCluster:
    """This module's scenarios run in the real node's cluster (namespace follows)."""
    return real_cluster


@pytest.fixture(scope="module")
def operator(operator_pod: Release) -> Release:
    """The chart's operator pod instead of the host process."""
    return operator_pod


CONTROLLER = "example.com/gateway-controller"


def write_route_status(cluster: Any, namespace: str, accepted: bool) -> int:
    """Answer for the route's current generation as a gateway controller would; returns that generation."""
    route = get(cluster, namespace, "httproute", "fraud")
    assert route is not None
    generation = int(route["metadata"]["generation"])
    resolved = (
        {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "message": "resolved"}
        if accepted
        else {
            "type": "ResolvedRefs",
            "status": "False",
            "reason": "BackendNotFound",
            "message": "backend fraud-candidate cannot be resolved",
        }
    )
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    conditions = [
        {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "accepted"},
        resolved,
    ]
    status = {
        "parents": [
            {
                "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public"},
                "controllerName": CONTROLLER,
                "conditions": [
                    {**c, "observedGeneration": generation, "lastTransitionTime": now} for c in conditions
                ],
            }
        ]
    }
    cluster.kubectl(
        "-n",
        namespace,
        "patch",
        "httproute",
        "fraud",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    return generation


def candidate_weight(cluster: Any, namespace: str) -> int:
    route = get(cluster, namespace, "httproute", "fraud") or {}
    backends = route.get("spec", {}).get("rules", [{}])[0].get("backendRefs", [])
    return sum(int(b.get("weight", 1)) for b in backends if b["name"] == "fraud-candidate")


def events(cluster: Any, namespace: str, reason: str) -> list[dict[str, Any]]:
    result = cluster.kubectl(
        "-n", namespace, "get", "events", "--field-selector", f"reason={reason}", "-o", "json"
    )
    found: list[dict[str, Any]] = json.loads(result.stdout)["items"]
    return found


def test_a_route_the_gateway_refuses_is_reported_and_moves_no_traffic_until_accepted(
    cluster: Any, namespace: str
) -> None:
    strategy = {"canary": {"steps": [{"weight": 20, "pause": "3s"}, {"weight": 60}]}}
    apply(cluster, namespace, fraud("1.0.0", strategy=strategy))
    old = wait_phase(cluster, namespace, "fraud", "Stable")["stable"]["revision"]
    write_route_status(cluster, namespace, accepted=False)

    apply(cluster, namespace, fraud("2.0.0", strategy=strategy))
    # the candidate's replicas are Ready and the planner would enter the 20% step: it holds instead
    status = wait_for(
        "the canary held at step 1",
        lambda: (
            (s := md_status(cluster, namespace, "fraud")).get("message", "").startswith("holding at canary")
            and s
        ),
    )
    route = condition(status, "RouteAccepted")
    assert route is not None and (route["status"], route["reason"]) == ("False", "RouteRefused")
    for words in (
        "HTTPRoute fraud",
        f"{namespace}/public",
        CONTROLLER,
        "ResolvedRefs False",
        "BackendNotFound",
    ):
        assert words in route["message"], route["message"]
    assert status["traffic"] == [{"revision": old, "role": "stable", "weight": 100}]
    assert status["stable"]["revision"] == old
    assert candidate_weight(cluster, namespace) == 0
    refused = wait_for("a RouteRefused Event", lambda: events(cluster, namespace, "RouteRefused"))
    assert refused[0]["type"] == "Warning" and "BackendNotFound" in refused[0]["message"]

    write_route_status(cluster, namespace, accepted=True)
    wait_for("the 20% step in the route", lambda: candidate_weight(cluster, namespace) == 20)
    # the 20% route is a new generation the gateway has not answered for: the next step waits
    held = wait_for(
        "the held next step",
        lambda: (
            (s := md_status(cluster, namespace, "fraud")).get("message", "").startswith("holding at canary")
            and s
        ),
    )
    assert "not yet accepted" in held["message"]
    assert candidate_weight(cluster, namespace) == 20
    write_route_status(cluster, namespace, accepted=True)
    wait_for("the 60% step in the route", lambda: candidate_weight(cluster, namespace) == 60)


def test_the_old_revision_stays_up_for_the_scale_down_delay_after_promotion_then_goes(
    cluster: Any, namespace: str
) -> None:
    delay = 8
    strategy = {"scaleDownDelay": f"{delay}s"}
    apply(cluster, namespace, fraud("1.0.0", router="service", strategy=strategy))
    old = wait_phase(cluster, namespace, "fraud", "Stable")["stable"]["revision"]
    deployment = get(cluster, namespace, "deployment", old)
    assert deployment is not None
    pod = deployment["spec"]["template"]["spec"]
    # the API server took the preStop sleep and the grace period that matches it
    assert pod["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}
    assert pod["terminationGracePeriodSeconds"] == 40

    replicas_seen: list[tuple[float, int]] = []
    stop = threading.Event()

    def observe() -> int:
        """The old Deployment's replicas now, recorded (by the sampler and by the final wait)."""
        found = get(cluster, namespace, "deployment", old)
        replicas = int(found["spec"]["replicas"]) if found else -1
        replicas_seen.append((time.time(), replicas))
        return replicas

    def sample() -> None:
        while not stop.is_set():
            observe()
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        apply(cluster, namespace, fraud("2.0.0", router="service", strategy=strategy))
        status = wait_for(
            "2.0.0 promoted",
            lambda: (
                (s := md_status(cluster, namespace, "fraud")).get("stable", {}).get("revision") != old and s
            ),
        )
        promoted = datetime.fromisoformat(status["history"][-1]["at"].replace("Z", "+00:00")).timestamp()
        deadline = status["operatorState"]["scaleDownAt"][old]
        assert datetime.fromisoformat(deadline.replace("Z", "+00:00")).timestamp() == int(promoted) + delay
        # Recorded here too: the wait can see the zero first and stop the sampler before it does.
        wait_for("the old revision scaled to zero", lambda: observe() == 0)
    finally:
        stop.set()
        sampler.join()
    gone = min(t for t, replicas in replicas_seen if replicas == 0)
    up_after_promotion = [replicas for t, replicas in replicas_seen if promoted <= t < int(promoted) + delay]
    assert up_after_promotion and set(up_after_promotion) == {2}, replicas_seen
    assert gone >= int(promoted) + delay, (gone, promoted)
    print(f"\nold revision scaled down {gone - promoted:.1f}s after the promotion (delay {delay}s)")
