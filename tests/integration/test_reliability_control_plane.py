"""Reliability: the control plane and Prometheus fail under a rollout in progress.

The API server or etcd restarting mid-canary must not change how the rollout
ends; Prometheus going away mid-analysis must hold the canary where it is
(Inconclusive is not success, DESIGN.md rule 4) and let it resume once
Prometheus is back.
"""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest
from reliability import (
    TrafficSampler,
    assert_promoted_cleanly,
    canary,
    healthy_error_rate,
    reader,
    revision,
    wait_all_stable_at,
)

from kubetest import apply, md_status, wait_for, wait_phase
from modeldeploy.kube.client import KubeClient
from modeldeploy.kube.kinds import HTTPROUTE
from modeldeploy_dev.metrics import Exporter

pytestmark = pytest.mark.usefixtures("operator")


def candidate_weight(client: KubeClient, namespace: str) -> int | None:
    route = client.get(HTTPROUTE, namespace, "fraud")
    if route is None:
        return None
    backends = route["spec"]["rules"][0]["backendRefs"]
    return next((b.get("weight", 1) for b in backends if b["name"] == "fraud-candidate"), 0)


def wait_ready(cluster: Any, timeout: float = 120) -> None:
    """The API server answers /readyz and every local component is running again."""
    wait_for(
        "kube-apiserver /readyz",
        lambda: cluster.kubectl("get", "--raw", "/readyz", check=False, timeout=10).returncode == 0,
        timeout=timeout,
        interval=0.5,
    )
    assert all(cluster.running().values()), cluster.running()


def start_canary(
    cluster: Any, namespace: str, exporter: Exporter, prometheus: str, pause: str
) -> tuple[str, str]:
    """v1 Stable, then v2 with a passing error rate; returns (old, new) once step 1 carries traffic."""
    v1, v2 = canary("1.0.0", pause=pause), canary("2.0.0", pause=pause)
    old, new = revision(v1), revision(v2)
    apply(cluster, namespace, v1)
    wait_phase(cluster, namespace, "fraud", "Stable")
    healthy_error_rate(exporter, prometheus, {namespace: new})
    apply(cluster, namespace, v2)
    client = reader(cluster)
    wait_for(
        "step 1 in the route", lambda: candidate_weight(client, namespace) == 30, timeout=60, interval=0.1
    )
    return old, new


@pytest.mark.timeout(300)
@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_a_canary_ends_as_usual_when_the_api_server_or_etcd_restarts_under_it(
    cluster: Any, namespace: str, exporter: Exporter, prometheus: str, component: str
) -> None:
    client = reader(cluster)
    with TrafficSampler(client, {namespace}) as sampler:
        old, new = start_canary(cluster, namespace, exporter, prometheus, pause="4s")
        # the sampler has read step 1 too before anything restarts (a step lasts 4 s)
        wait_for(
            "the sampler reading step 1",
            lambda: (namespace, "fraud-candidate", 30) in sampler.weights_seen,
            timeout=3,
            interval=0.05,
        )
        started = time.monotonic()
        try:
            cluster.restart(component)
        finally:
            wait_ready(cluster)
        print(f"\n{component} restarted and ready again in {time.monotonic() - started:.1f}s")
        final = wait_all_stable_at(client, {namespace: new}, timeout=120)
    assert_promoted_cleanly(client, namespace, old, new, final[namespace])
    assert sampler.violations == []
    assert {w for _, b, w in sampler.weights_seen if b == "fraud-candidate"} >= {30}


def prometheus_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.mark.timeout(240)
def test_prometheus_down_mid_analysis_holds_the_canary_then_it_resumes_and_completes(
    cluster: Any, namespace: str, exporter: Exporter, prometheus: str
) -> None:
    client = reader(cluster)
    command = cluster.table.get("prometheus").command
    with TrafficSampler(client, {namespace}) as sampler:
        # The pause (8 s) outlasts one interval (5 s): leaving step 1 needs a measurement taken while down.
        old, new = start_canary(cluster, namespace, exporter, prometheus, pause="8s")
        cluster.table.stop("prometheus")
        try:
            weights: set[int | None] = set()
            deadline = time.monotonic() + 3 * 5 + 2  # three analysis intervals and a bit
            while time.monotonic() < deadline:
                weights.add(candidate_weight(client, namespace))
                time.sleep(0.2)
            held = md_status(cluster, namespace, "fraud")
        finally:
            cluster.table.start("prometheus", command)
            wait_for("Prometheus ready again", lambda: prometheus_ready(prometheus), timeout=60)
        assert weights == {30}, "the canary moved while Prometheus was down"
        assert held["phase"] == "Progressing", held
        assert (held["candidate"]["revision"], held["candidate"]["stage"]) == (new, "Canary"), held
        (result,) = held["analysis"]
        assert result["phase"] == "Inconclusive" and result["inconclusive"] >= 2, result
        assert result["failures"] == 0, result
        assert [h["outcome"] for h in held["history"]] == ["Promoted"]

        final = wait_all_stable_at(client, {namespace: new}, timeout=90)
    assert_promoted_cleanly(client, namespace, old, new, final[namespace])
    assert sampler.violations == []
    assert {w for _, b, w in sampler.weights_seen if b == "fraud-candidate"} == {30, 60}
