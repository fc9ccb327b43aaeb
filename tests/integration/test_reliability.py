"""Reliability: the operator SIGKILLed at random moments during twenty concurrent canaries.

DESIGN.md rule 6 (state lives in status, actions are idempotent) and rule 1
(never traffic to a revision without Ready replicas), checked against a real
control plane. The pieces the test_reliability_* files share are in
reliability.py (helpers) and conftest.py (fixtures).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from reliability import (
    TrafficSampler,
    apply_all,
    assert_promoted_cleanly,
    canary,
    create_namespaces,
    delete_namespaces,
    healthy_error_rate,
    in_namespace,
    reader,
    revision,
    statuses,
    wait_all_stable_at,
)

from modeldeploy_dev.metrics import Exporter
from modeldeploy_dev.operator import OperatorProcess

# --- the test ---------------------------------------------------------------------

ROLLOUTS = 20
KILLS = 6


@pytest.mark.timeout(420)
def test_sigkill_at_random_moments_during_twenty_canaries_changes_no_outcome_and_no_traffic_rule(
    cluster: Any, own_operators: Callable[..., OperatorProcess], exporter: Exporter, prometheus: str
) -> None:
    seed = random.randrange(1 << 30)
    print(f"\nrandom seed {seed}")
    rng = random.Random(seed)
    client = reader(cluster)
    namespaces = create_namespaces(cluster, ROLLOUTS, "kill")
    try:
        operator = own_operators()
        # Pauses long enough that the rollouts are still under way when the later kills land.
        v1, v2 = canary("1.0.0", pause="12s"), canary("2.0.0", pause="12s")
        old, new = revision(v1), revision(v2)
        apply_all(cluster, [in_namespace(v1, ns) for ns in namespaces])
        wait_all_stable_at(client, {ns: old for ns in namespaces}, timeout=120)
        healthy_error_rate(exporter, prometheus, {ns: new for ns in namespaces})

        in_flight_at_kill: list[int] = []
        with TrafficSampler(client, set(namespaces)) as sampler:
            apply_all(cluster, [in_namespace(v2, ns) for ns in namespaces])
            for _ in range(KILLS):
                time.sleep(rng.uniform(1, 4))
                found = statuses(client, set(namespaces))
                in_flight_at_kill.append(sum(1 for s in found.values() if s.get("phase") != "Stable"))
                operator.kill()
                operator.start(timeout=60)
            final = wait_all_stable_at(client, {ns: new for ns in namespaces}, timeout=180)
            time.sleep(1)  # one more second of samples after the last promotion
        print(f"rollouts in flight at each kill: {in_flight_at_kill}")
        print(f"sampler: {sampler.samples} snapshots, {sampler.errors} errors")

        assert sum(1 for n in in_flight_at_kill if n) >= KILLS // 2, in_flight_at_kill  # kills hit rollouts
        for namespace in namespaces:
            assert_promoted_cleanly(client, namespace, old, new, final[namespace])
        assert sampler.violations == []
        # The sampler watched the canaries walk their steps, so its silence means something.
        candidate_weights = {w for _, backend, w in sampler.weights_seen if backend == "fraud-candidate"}
        assert candidate_weights == {30, 60}, sampler.weights_seen
        assert sampler.samples > 50
    finally:
        delete_namespaces(cluster, namespaces)
