"""Progressive delivery end to end, against the operator as users run it: the chart's pod on the
real node (its image, its ServiceAccount), judging by the cluster's real Prometheus on metrics
that exporters the tests control publish. The revisions' pods stay on kwok nodes.

The scenarios whose other end listens on 127.0.0.1 (warm-up target, Prometheus stand-ins)
run against the host-process operator: test_progressive_host.py.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest
from progressive import (
    INTERVAL,
    LATENCY,
    error_rate_analysis,
    manifest,
    revision,
    route_state,
    stable_v1,
)

from kubetest import Release, apply, event_reasons, get, items, md_status, patch_action, wait_for, wait_phase
from modeldeploy.kube.client import KubeClient
from modeldeploy.kube.kinds import HTTPROUTE
from modeldeploy_dev.cluster import LocalCluster
from modeldeploy_dev.metrics import Exporter, scalar, wait_for_value

pytestmark = pytest.mark.usefixtures("operator")


@pytest.fixture(scope="module")
def cluster(real_cluster: LocalCluster) -> LocalCluster:
    """This module's scenarios run in the real node's cluster (namespace, exporter and prometheus follow)."""
    return real_cluster


@pytest.fixture(scope="module")
def operator(operator_pod: Release) -> Release:
    """The chart's operator pod instead of the host process."""
    return operator_pod


def _canary_at_step_two(cluster: Any, namespace: str, exporter: Exporter, prometheus: str) -> str:
    strategy = {"canary": {"steps": [{"weight": 20, "pause": "5s"}, {"weight": 50, "pause": "10m"}]}}
    stable_v1(cluster, namespace, strategy=strategy, analysis=error_rate_analysis())
    v2 = manifest("2.0.0", strategy=strategy, analysis=error_rate_analysis())
    candidate = revision(v2)
    exporter.set("model_error_rate", 0.001, namespace=namespace, revision=candidate)
    wait_for_value(
        prometheus,
        f'model_error_rate{{namespace="{namespace}",revision="{candidate}"}}',
        lambda v: v == 0.001,
    )
    apply(cluster, namespace, v2)
    wait_for(
        "step 2 in the route",
        lambda: route_state(cluster, namespace) == ((("fraud", 50), ("fraud-candidate", 50)), 0),
        timeout=90,
    )
    return candidate


def test_error_rate_breach_at_step_two_rolls_back_within_one_interval(
    cluster: Any, namespace: str, exporter: Exporter, prometheus: str
) -> None:
    candidate = _canary_at_step_two(cluster, namespace, exporter, prometheus)
    exporter.set("model_error_rate", 0.3, namespace=namespace, revision=candidate)
    wait_for_value(
        prometheus, f'model_error_rate{{namespace="{namespace}",revision="{candidate}"}}', lambda v: v == 0.3
    )
    visible = time.monotonic()
    wait_for(
        "all traffic back on stable",
        lambda: route_state(cluster, namespace) == ((("fraud", 100),), 0),
        timeout=INTERVAL + 10,
        interval=0.05,
    )
    reaction = time.monotonic() - visible
    print(f"\nbreach visible -> all traffic on stable: {reaction:.2f}s (interval {INTERVAL}s)")
    assert reaction <= INTERVAL + 1
    status = wait_phase(cluster, namespace, "fraud", "RolledBack")
    assert "error-rate 0.3 > max 0.05" in status["message"]
    last = status["history"][-1]
    assert (last["revision"], last["outcome"], last["reason"]) == (candidate, "RolledBack", "MetricFailed")
    wait_for(
        "candidate scaled to zero",
        lambda: get(cluster, namespace, "deployment", candidate)["spec"]["replicas"] == 0,
    )
    time.sleep(INTERVAL)
    assert md_status(cluster, namespace, "fraud")["phase"] == "RolledBack"  # no new attempt by itself


def test_challenger_slower_than_its_champion_is_rolled_back_by_compare_to_stable(
    cluster: Any, namespace: str, exporter: Exporter, prometheus: str
) -> None:
    analysis = {
        "interval": f"{INTERVAL}s",
        "metrics": [{"name": "latency", "query": LATENCY, "max": 1.0, "compareToStable": {"maxRatio": 1.2}}],
    }
    strategy = {"canary": {"steps": [{"weight": 20, "pause": "30s"}]}}
    stable = stable_v1(cluster, namespace, strategy=strategy, analysis=analysis)
    v2 = manifest("2.0.0", strategy=strategy, analysis=analysis)
    candidate = revision(v2)
    exporter.set("model_latency_seconds", 0.2, namespace=namespace, revision=stable)
    exporter.set("model_latency_seconds", 0.3, namespace=namespace, revision=candidate)
    wait_for_value(
        prometheus,
        f'model_latency_seconds{{namespace="{namespace}",revision="{candidate}"}}',
        lambda v: v == 0.3,
    )
    apply(cluster, namespace, v2)
    status = wait_phase(cluster, namespace, "fraud", "RolledBack", timeout=60)
    assert "latency 0.3 > 1.2 x stable 0.2" in status["message"], status["message"]
    result = next(r for r in status["analysis"] if r["metric"] == "latency")
    assert (result["value"], result["stableValue"], result["phase"]) == (0.3, 0.2, "Failed")


def test_empty_and_nan_results_are_inconclusive_never_a_promotion(
    cluster: Any, namespace: str, exporter: Exporter, prometheus: str
) -> None:
    strategy = {"canary": {"steps": [{"weight": 20, "pause": "5s"}]}}
    stable_v1(cluster, namespace, strategy=strategy, analysis=error_rate_analysis())
    v2 = manifest("2.0.0", strategy=strategy, analysis=error_rate_analysis())
    apply(cluster, namespace, v2)  # nothing exported for the candidate: empty result
    wait_for(
        "inconclusive",
        lambda: (
            (md_status(cluster, namespace, "fraud").get("analysis") or [{}])[0].get("phase") == "Inconclusive"
        ),
        timeout=60,
    )
    exporter.set("model_error_rate", float("nan"), namespace=namespace, revision=revision(v2))
    time.sleep(3 * INTERVAL)
    status = md_status(cluster, namespace, "fraud")
    assert status["phase"] == "Progressing"
    assert status["analysis"][0]["phase"] == "Inconclusive"
    assert "NaN" in status["analysis"][0]["message"] or "nan" in status["analysis"][0]["message"].lower()


def test_blue_green_with_manual_promote_then_undo_to_previous_and_to_a_named_revision(
    cluster: Any, namespace: str
) -> None:
    strategy = {"blueGreen": {"autoPromote": False, "scaleDownDelay": "10m"}}
    v1 = stable_v1(cluster, namespace, router="service", strategy=strategy)
    revisions = [v1]
    for version in ("2.0.0", "3.0.0"):
        doc = manifest(version, router="service", strategy=strategy)
        apply(cluster, namespace, doc)
        wait_for(
            "preview ready",
            lambda: (md_status(cluster, namespace, "fraud").get("candidate") or {}).get("stageStartedAt"),
            timeout=60,
        )
        service = get(cluster, namespace, "service", "fraud-candidate")
        assert service["spec"]["selector"]["modeldeploy.io/revision"] == revision(doc)  # type: ignore[index]
        assert (
            get(cluster, namespace, "service", "fraud")["spec"]["selector"][  # type: ignore[index]
                "modeldeploy.io/revision"
            ]
            == revisions[-1]
        )
        time.sleep(2)
        assert md_status(cluster, namespace, "fraud")["phase"] == "Progressing"  # waits for a person
        patch_action(cluster, namespace, {"type": "Promote"})
        promoted = revision(doc)
        wait_for("promoted", lambda: md_status(cluster, namespace, "fraud")["stable"]["revision"] == promoted)  # noqa: B023
        revisions.append(promoted)
        assert get(cluster, namespace, "deployment", revisions[-2])["spec"]["replicas"] == 2  # type: ignore[index]

    patch_action(cluster, namespace, {"type": "Undo"})
    status = wait_for(
        "undo to 2.0.0",
        lambda: (s := md_status(cluster, namespace, "fraud"))["stable"]["revision"] == revisions[1] and s,
    )
    assert status["phase"] == "RolledBack"
    assert (
        get(cluster, namespace, "service", "fraud")["spec"]["selector"][  # type: ignore[index]
            "modeldeploy.io/revision"
        ]
        == revisions[1]
    )

    patch_action(cluster, namespace, {"type": "Undo", "toRevision": v1})
    wait_for(
        "undo to 1.0.0",
        lambda: md_status(cluster, namespace, "fraud")["stable"]["revision"] == v1,
        timeout=60,
    )
    wait_for(
        "its Deployment serving",
        lambda: get(cluster, namespace, "deployment", v1)["status"].get("readyReplicas") == 2,
    )
    assert [h["reason"] for h in md_status(cluster, namespace, "fraud")["history"]][-2:] == ["Undo", "Undo"]


def test_rollback_reaction_over_ten_canaries(cluster: Any, exporter: Exporter, prometheus: str) -> None:
    """Ten canaries at step 2 breach at once; each must be back on stable within one interval + 1 s."""
    namespaces = [f"react-{i}-{int(time.time()) % 100000}" for i in range(10)]
    candidates: dict[str, str] = {}
    strategy = {"canary": {"steps": [{"weight": 20, "pause": "5s"}, {"weight": 50, "pause": "10m"}]}}
    try:
        for ns in namespaces:
            cluster.kubectl("create", "namespace", ns)
        wait_for(
            "default ServiceAccounts",
            lambda: all(
                cluster.kubectl("-n", ns, "get", "sa", "default", check=False).returncode == 0
                for ns in namespaces
            ),
        )
        for ns in namespaces:
            apply(cluster, ns, manifest("1.0.0", strategy=strategy, analysis=error_rate_analysis()))
        for ns in namespaces:
            wait_phase(cluster, ns, "fraud", "Stable", timeout=90)
            doc = manifest("2.0.0", strategy=strategy, analysis=error_rate_analysis())
            candidates[ns] = revision(doc)
            exporter.set("model_error_rate", 0.001, namespace=ns, revision=candidates[ns])
            apply(cluster, ns, doc)
        for ns in namespaces:
            wait_for(
                f"step 2 in {ns}",
                lambda ns=ns: (
                    route_state(cluster, ns)
                    == (  # type: ignore[misc]
                        (("fraud", 50), ("fraud-candidate", 50)),
                        0,
                    )
                ),
                timeout=120,
            )
        for ns in namespaces:
            exporter.set("model_error_rate", 0.3, namespace=ns, revision=candidates[ns])
        api = KubeClient.from_environment(str(cluster.kubeconfig))  # fast reads: no kubectl process per poll
        visible: dict[str, float] = {}
        back: dict[str, float] = {}
        deadline = time.monotonic() + 60
        while len(back) < len(namespaces) and time.monotonic() < deadline:
            for ns in namespaces:
                if ns not in visible and _value(prometheus, candidates[ns], ns) == 0.3:
                    visible[ns] = time.monotonic()
                if ns not in back and _route_weights(api, ns) == [("fraud", 100)]:
                    back[ns] = time.monotonic()
            time.sleep(0.05)
        reactions = sorted(back[ns] - visible[ns] for ns in namespaces)
        print(
            f"\nbreach visible -> all traffic on stable over {len(reactions)} canaries "
            f"(interval {INTERVAL}s): "
            f"median {statistics.median(reactions):.2f}s, max {max(reactions):.2f}s, "
            f"all {[round(r, 2) for r in reactions]}"
        )
        assert max(reactions) <= INTERVAL + 1
    finally:
        for ns in namespaces:
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def _route_weights(api: KubeClient, namespace: str) -> list[tuple[str, int]]:
    route = api.get(HTTPROUTE, namespace, "fraud") or {"spec": {"rules": [{"backendRefs": []}]}}
    return [(b["name"], b.get("weight", 1)) for b in route["spec"]["rules"][0]["backendRefs"]]


def _value(prometheus: str, candidate: str, namespace: str) -> float | None:
    return scalar(prometheus, f'model_error_rate{{revision="{candidate}",namespace="{namespace}"}}')


def test_fallback_takes_all_traffic_when_stable_has_no_ready_pod_and_recovers(
    cluster: Any, namespace: str
) -> None:
    fallback = {
        "mode": "Response",
        "response": {"status": 200, "body": '{"score": 0, "fallback": true}'},
        "trigger": {"interval": "5s", "recoverAfter": 2},
    }
    stable = stable_v1(cluster, namespace, fallback=fallback)
    wait_for(
        "fallback Deployment ready",
        lambda: (
            (get(cluster, namespace, "deployment", "fraud-fallback") or {})
            .get("status", {})
            .get("readyReplicas")
            == 1
        ),
    )
    config = get(cluster, namespace, "configmap", "fraud-fallback")
    assert config is not None and config["data"]["body"] == '{"score": 0, "fallback": true}'
    assert route_state(cluster, namespace) == ((("fraud", 100),), 0)

    # Every stable pod fails its readiness probe (kwok's stage for the annotation).
    for pod in items(cluster, namespace, "pods", f"modeldeploy.io/revision={stable}"):
        cluster.kubectl(
            "-n", namespace, "annotate", "pod", pod["metadata"]["name"], "kwok.modeldeploy.io/unready=true"
        )
    wait_for(
        "all traffic on the fallback",
        lambda: route_state(cluster, namespace) == ((("fraud", 0), ("fraud-fallback", 100)), 0),
        timeout=30,
    )
    status = md_status(cluster, namespace, "fraud")
    assert status["phase"] == "Degraded" and "fallback" in status["message"]
    active = next(c for c in status["conditions"] if c["type"] == "FallbackActive")
    assert active["status"] == "True"
    event_reasons(cluster, namespace, "FallbackActivated")

    for pod in items(cluster, namespace, "pods", f"modeldeploy.io/revision={stable}"):
        cluster.kubectl(
            "-n", namespace, "annotate", "pod", pod["metadata"]["name"], "kwok.modeldeploy.io/unready-"
        )
    recovered_from = time.monotonic()
    wait_for(
        "traffic back on stable",
        lambda: route_state(cluster, namespace) == ((("fraud", 100),), 0),
        timeout=40,
    )
    assert time.monotonic() - recovered_from >= 4  # two healthy checks, 5 s apart: no instant flap back
    status = wait_phase(cluster, namespace, "fraud", "Stable")
    assert next(c for c in status["conditions"] if c["type"] == "FallbackActive")["status"] == "False"
    event_reasons(cluster, namespace, "FallbackRecovered")
