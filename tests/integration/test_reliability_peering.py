"""Reliability: two operator replicas with kopf peering; only the higher-priority one acts.

The realistic order is a rolling update: a replica is already carrying a canary
when a second, higher-priority one starts. From the moment the first one has
paused (kopf's streams, and its own queue with no reconcile left running), it
must make no write at all (its own resync and step timers included),
while the second finishes the canary. When the active replica is SIGKILLed, the
paused one takes over once the dead peer's record expires (kopf's lifetime,
60 s) and carries the next rollout.

These operators run as system:masters (``cluster.operator_kubeconfig``): the
session's ServiceAccount has the chart's RBAC without ``peering.enabled``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability import (
    TrafficSampler,
    canary,
    healthy_error_rate,
    reader,
    revision,
    wait_all_stable_at,
)

from kubetest import apply, wait_for, wait_phase
from modeldeploy.kube.client import WRITE_VERBS
from modeldeploy.kube.kinds import HTTPROUTE
from modeldeploy_dev.metrics import Exporter
from modeldeploy_dev.operator import OperatorProcess

PEERING_CRDS = Path(__file__).resolve().parents[2] / "charts" / "modeldeploy" / "crds" / "kopf-peering.yaml"
REQUESTS = re.compile(r"^modeldeploy_kube_api_requests_total\{([^}]*)\} ([0-9.e+]+)$")
VERB = re.compile(r'verb="([^"]+)"')


def write_verbs(operator: OperatorProcess) -> list[str]:
    """The operator's write counters, as exported (verb, code and count), for failure messages."""
    return [
        line
        for line in operator.metrics().splitlines()
        if line.startswith("modeldeploy_kube_api_requests_total{")
        and any(f'verb="{verb}"' in line for verb in WRITE_VERBS)
    ]


def writes(operator: OperatorProcess) -> int:
    """Write requests (apply, patch, create, delete) the operator has made, from its own metrics."""
    total = 0.0
    for line in operator.metrics().splitlines():
        match = REQUESTS.match(line)
        verb = VERB.search(match.group(1)) if match else None
        if match and verb and verb.group(1) in WRITE_VERBS:
            total += float(match.group(2))
    return int(total)


@pytest.fixture
def peering(cluster: Any) -> Iterator[str]:
    """The kopf peering CRDs and a fresh ClusterKopfPeering for this test's replicas."""
    cluster.kubectl("apply", "--server-side", "-f", str(PEERING_CRDS))
    cluster.wait_established("crd/clusterkopfpeerings.kopf.dev")
    name = f"reliability-{uuid.uuid4().hex[:6]}"
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=f"apiVersion: kopf.dev/v1\nkind: ClusterKopfPeering\nmetadata: {{name: {name}}}\n",
    )
    yield name
    cluster.kubectl("delete", "clusterkopfpeering", name, "--wait=false", check=False)


def candidate_weight(client: Any, namespace: str) -> int:
    route = client.get(HTTPROUTE, namespace, "fraud")
    backends = route["spec"]["rules"][0]["backendRefs"] if route else []
    return int(next((b.get("weight", 1) for b in backends if b["name"] == "fraud-candidate"), 0))


@pytest.mark.timeout(300)
def test_with_peering_only_the_higher_priority_replica_writes_and_the_other_takes_over_when_it_dies(
    cluster: Any,
    namespace: str,
    peering: str,
    own_operators: Callable[..., OperatorProcess],
    exporter: Exporter,
    prometheus: str,
) -> None:
    admin = cluster.operator_kubeconfig
    client = reader(cluster)
    low = own_operators("--peering", peering, "--priority", "100", kubeconfig=admin)
    v1, v2, v3 = (canary(v, pause="6s") for v in ("1.0.0", "2.0.0", "3.0.0"))
    apply(cluster, namespace, v1)
    wait_phase(cluster, namespace, "fraud", "Stable", timeout=60)
    healthy_error_rate(exporter, prometheus, {namespace: revision(v2)})
    healthy_error_rate(exporter, prometheus, {namespace: revision(v3)})

    with TrafficSampler(client, {namespace}) as sampler:
        apply(cluster, namespace, v2)
        wait_for("low's canary at step 1", lambda: candidate_weight(client, namespace) == 30, timeout=60)
        high = own_operators("--peering", peering, "--priority", "200", kubeconfig=admin)
        # Paused: kopf's watch streams (its log) and the operator's own queue, once the reconciles
        # that were running when it noticed the peer have ended (its log; it polls the peering
        # object every 2 s, so a step timer may still fire in between).
        wait_for("low pauses", lambda: "Pausing operations in favour of" in low.log.read_text(), timeout=30)
        wait_for("low's queue drained", lambda: "paused: no reconcile running" in low.log.read_text())
        low_before, high_before = writes(low), writes(high)

        wait_all_stable_at(client, {namespace: revision(v2)}, timeout=90)
        time.sleep(3)  # low's step timers and resync would fire about now, if they still could
        low_wrote, low_verbs = writes(low) - low_before, write_verbs(low)
        assert writes(high) > high_before, "the active replica did not carry the canary"

        high.kill()
        died = time.monotonic()
        apply(cluster, namespace, v3)
        final = wait_all_stable_at(client, {namespace: revision(v3)}, timeout=150)
        print(f"\nhigh SIGKILLed -> v3 Stable under low: {time.monotonic() - died:.1f}s")
    assert "Resuming operations after the pause" in low.log.read_text()
    assert low_wrote == 0, f"the paused replica wrote {low_wrote} times; its writes by verb: {low_verbs}"
    assert [(h["revision"], h["outcome"]) for h in final[namespace]["history"]] == [
        (revision(v1), "Promoted"),
        (revision(v2), "Promoted"),
        (revision(v3), "Promoted"),
    ]
    assert sampler.violations == []
