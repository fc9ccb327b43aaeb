"""Reliability: people change things under a rollout while its analysis runs.

A new version applied while the canary is at step 1 supersedes the candidate
(recorded in the history) and the newest version rolls out from the start.
Deleting the candidate's Deployment and the route mid-analysis is drift: both
come back and the rollout still ends as usual. The operator is the chart's pod on the real
node; the revisions' pods stay on kwok nodes.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from reliability import (
    MANAGED,
    TrafficSampler,
    assert_promoted_cleanly,
    canary,
    healthy_error_rate,
    reader,
    revision,
    wait_all_stable_at,
)

from kubetest import Release, apply, wait_for, wait_phase
from modeldeploy.kube.client import KubeClient
from modeldeploy.kube.kinds import DEPLOYMENT, HTTPROUTE
from modeldeploy_dev.cluster import LocalCluster
from modeldeploy_dev.metrics import Exporter

pytestmark = pytest.mark.usefixtures("operator")


@pytest.fixture(scope="module")
def cluster(real_cluster: LocalCluster) -> LocalCluster:
    """This module's scenarios run in the real node's cluster (namespace, exporter and prometheus follow)."""
    return real_cluster


@pytest.fixture(scope="module")
def operator(operator_pod: Release) -> Release:
    """The chart's operator pod instead of the host process."""
    return operator_pod


def candidate_weight(client: KubeClient, namespace: str) -> int | None:
    route = client.get(HTTPROUTE, namespace, "fraud")
    if route is None:
        return None
    backends = route["spec"]["rules"][0]["backendRefs"]
    return int(next((b.get("weight", 1) for b in backends if b["name"] == "fraud-candidate"), 0))


@pytest.mark.timeout(240)
def test_a_new_version_mid_canary_supersedes_the_candidate_and_rolls_out_itself(
    cluster: Any, namespace: str, exporter: Exporter, prometheus: str
) -> None:
    client = reader(cluster)
    v1, v2, v3 = canary("1.0.0"), canary("2.0.0", pause="10m"), canary("3.0.0")
    old, superseded, new = revision(v1), revision(v2), revision(v3)
    apply(cluster, namespace, v1)
    wait_phase(cluster, namespace, "fraud", "Stable")
    healthy_error_rate(exporter, prometheus, {namespace: superseded})
    healthy_error_rate(exporter, prometheus, {namespace: new})
    with TrafficSampler(client, {namespace}) as sampler:
        apply(cluster, namespace, v2)
        wait_for("v2 at step 1", lambda: candidate_weight(client, namespace) == 30, timeout=60, interval=0.1)
        apply(cluster, namespace, v3)
        final = wait_all_stable_at(client, {namespace: new}, timeout=120)
    history = [(h["revision"], h["outcome"]) for h in final[namespace]["history"]]
    assert history == [(old, "Promoted"), (superseded, "Superseded"), (new, "Promoted")], history
    assert sampler.violations == []
    # v3 walked both of its own steps: it did not inherit v2's position.
    assert {w for _, b, w in sampler.weights_seen if b == "fraud-candidate"} == {30, 60}
    wait_for(
        "only v3 serving, v1 and v2 scaled to zero",
        lambda: (
            {
                d["metadata"]["name"]: d["spec"]["replicas"]
                for d in client.list_objects(DEPLOYMENT, namespace, MANAGED)
            }
            == {old: 0, superseded: 0, new: 2}
        ),
        timeout=90,  # the default scaleDownDelay (30s) keeps the old revision up first
    )


@pytest.mark.timeout(240)
def test_deleting_the_candidate_deployment_and_the_route_mid_analysis_is_repaired_and_the_rollout_ends_well(
    cluster: Any, namespace: str, exporter: Exporter, prometheus: str
) -> None:
    client = reader(cluster)
    v1, v2 = canary("1.0.0", pause="12s"), canary("2.0.0", pause="12s")
    old, new = revision(v1), revision(v2)
    apply(cluster, namespace, v1)
    wait_phase(cluster, namespace, "fraud", "Stable")
    healthy_error_rate(exporter, prometheus, {namespace: new})
    with TrafficSampler(client, {namespace}) as sampler:
        apply(cluster, namespace, v2)
        wait_for("v2 at step 1", lambda: candidate_weight(client, namespace) == 30, timeout=60, interval=0.1)
        first_uid = client.get(DEPLOYMENT, namespace, new)["metadata"]["uid"]  # type: ignore[index]
        deleted = time.time()
        cluster.kubectl("-n", namespace, "delete", "deployment", new, "--wait=false")
        cluster.kubectl("-n", namespace, "delete", "httproute", "fraud", "--wait=false")
        wait_for(
            "the candidate Deployment recreated",
            lambda: (d := client.get(DEPLOYMENT, namespace, new)) and d["metadata"]["uid"] != first_uid,
            timeout=30,
        )
        wait_for("the route recreated", lambda: candidate_weight(client, namespace) is not None, timeout=30)
        final = wait_all_stable_at(client, {namespace: new}, timeout=120)
    assert_promoted_cleanly(client, namespace, old, new, final[namespace])
    print(f"\nsampler after the deletions at {time.strftime('%H:%M:%S', time.localtime(deleted))}:")
    print("\n".join(sampler.violations) or "no violation")
    # Deleting a Deployment that carries traffic is the user's doing; the operator must repair it at once.
    assert all(deleted <= t <= deleted + 2 for t in sampler.violation_times), sampler.violations
    assert {w for _, b, w in sampler.weights_seen if b == "fraud-candidate"} == {30, 60}
