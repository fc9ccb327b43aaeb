"""Autoscaling for real: MLServer pods on the real node, metrics-server reading the real kubelet,
the HPAs the session's operator pod made scaling the revisions under load.

- One revision scales up under load and back down after it.
- Under load through the gateway (Traefik), a stable scaled up by its HPA, a canary at 30%
  whose HPA bounds follow 30% of the stable's current count, then a promotion at the stable's
  full size with no failed request while traffic moves and the old revision goes.

Figures (printed, not asserted): seconds from load start to scaled up and from load end to
scaled back down; the candidate's replicas against its weight at each step; failed and total
requests across the promotion. The HPAs' behavior uses short windows to keep the tests short.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from typing import Any

import pytest

import kubetest
from kubetest import Release, apply, md_status, mlserver_digits, patch_action, wait_for, wait_phase
from modeldeploy_dev import gateway as traefik
from modeldeploy_dev.cluster import LocalCluster
from modeldeploy_dev.demo import models
from modeldeploy_dev.images import model_server_image
from modeldeploy_dev.inference import Client
from modeldeploy_dev.processes import wait_until

COLD_BUILD_TIMEOUT = 1500
LOAD_THREADS = 6
CPU_AT_HALF = [
    {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
    }
]
REQUESTS = {"requests": {"cpu": "50m"}}  # a few busy request loops are far above 50% of 50m


def get(cluster: LocalCluster, *args: str) -> dict[str, Any]:
    document = json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)
    assert isinstance(document, dict)
    return document


def sample_rows() -> list[list[float]]:
    _, features, _, _ = models.split()
    return [[float(v) for v in row] for row in features[:32]]


class Load:
    """Inference requests in a loop from a few threads, each on its own kept-alive connection.

    A request counts as failed unless the model answered 200 (a refused or reset connection,
    a timeout and any other status all count); answers are counted by the version they name.
    """

    def __init__(self, address: str, host: str | None = None) -> None:
        self.address, self.host = address, host
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.versions: Counter[str] = Counter()
        self.failed = 0
        self.failures: list[str] = []
        self.rows = sample_rows()
        self.started = time.monotonic()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(LOAD_THREADS)]

    def _run(self) -> None:
        client = Client(self.address, 80, host=self.host)
        while not self.stop.is_set():
            try:
                answer = client.infer(self.rows)
                failure = None if answer.status == 200 else f"HTTP {answer.status}: {answer.body[:200]!r}"
            except OSError as error:  # refused, reset, timed out
                client.close()
                answer, failure = None, repr(error)
            with self.lock:
                if failure is None and answer is not None:
                    self.versions[answer.version or "?"] += 1
                else:
                    self.failed += 1
                    if len(self.failures) < 10:
                        self.failures.append(f"at {self.seconds():.1f}s: {failure or 'no answer'}")
        client.close()

    def seconds(self) -> float:
        """Seconds since the load started."""
        return time.monotonic() - self.started

    def counts(self) -> tuple[Counter[str], int]:
        """Answers by version and failed requests so far."""
        with self.lock:
            return Counter(self.versions), self.failed

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)


def autoscaling(most: int, scale_down_window: int) -> dict[str, Any]:
    return {
        "minReplicas": 1,
        "maxReplicas": most,
        "metrics": CPU_AT_HALF,
        "behavior": {
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "policies": [{"type": "Pods", "value": most, "periodSeconds": 15}],
            },
            "scaleDown": {
                "stabilizationWindowSeconds": scale_down_window,
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
            },
        },
    }


def measured(cluster: LocalCluster, namespace: str, hpa: str) -> bool:
    """The HPA has read its pods' CPU from metrics-server."""
    current = get(cluster, "-n", namespace, "hpa", hpa).get("status", {})
    return any(
        (m.get("resource") or {}).get("current", {}).get("averageUtilization") is not None
        for m in current.get("currentMetrics") or []
    )


def scale(cluster: LocalCluster, namespace: str, revision: str) -> tuple[int, int]:
    """A revision's Deployment: the replicas its HPA set, and how many are Ready."""
    deployment = get(cluster, "-n", namespace, "deployment", revision)
    return int(deployment["spec"].get("replicas", 0)), int(
        deployment.get("status", {}).get("readyReplicas", 0)
    )


def hpa_bounds(cluster: LocalCluster, namespace: str, revision: str) -> tuple[int, int]:
    spec = get(cluster, "-n", namespace, "hpa", revision)["spec"]
    return int(spec["minReplicas"]), int(spec["maxReplicas"])


@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_a_revision_scales_up_under_load_and_back_down_after_it(
    real_cluster: LocalCluster, real_namespace: str, operator_pod: Release
) -> None:
    # The session's operator pod (the chart, its image) watches every namespace: a release of
    # this test's own beside it would be a second operator competing for the same objects.
    metrics = real_cluster.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes").stdout
    names = [item["metadata"]["name"] for item in json.loads(metrics)["items"]]
    assert names == [real_cluster.real_node_name], names  # the real kubelet only, never a kwok node

    server = model_server_image()
    real_cluster.import_images(server)
    manifest = mlserver_digits(
        server.reference, resources=REQUESTS, autoscaling=autoscaling(3, scale_down_window=15)
    )
    apply(real_cluster, real_namespace, manifest)
    status = wait_phase(real_cluster, real_namespace, "digits", "Stable", timeout=300)
    revision = status["stable"]["revision"]
    hpa = get(real_cluster, "-n", real_namespace, "hpa", revision)
    assert hpa["spec"]["scaleTargetRef"]["name"] == revision

    def replicas() -> int:
        return scale(real_cluster, real_namespace, revision)[0]

    wait_until(
        "the HPA reads the pods' CPU from metrics-server",
        lambda: measured(real_cluster, real_namespace, revision),
        180,
    )
    assert replicas() == 1
    service = get(real_cluster, "-n", real_namespace, "service", "digits")["spec"]["clusterIP"]
    probe = Client(service)
    wait_until("the Service through kube-proxy", lambda: probe.infer(sample_rows()).status == 200, 30)
    probe.close()
    load_started = time.monotonic()
    with Load(service) as load:
        wait_until("scaled up under load", lambda: replicas() > 1, 300)
        up = time.monotonic() - load_started
        most = replicas()
        time.sleep(20)
        most = max(most, replicas())
    load_ended = time.monotonic()
    wait_until("scaled back down after the load", lambda: replicas() == 1, 300)
    down = time.monotonic() - load_ended
    answers, failed = load.counts()
    print(
        f"\nautoscaling on the real node: load start -> scaled up (to {most}) in {up:.0f}s; "
        f"load end -> back to 1 in {down:.0f}s; requests ok={sum(answers.values())} failed={failed}"
    )
    # The operator never took the count back: the Deployment's replicas belong to the HPA.
    deployment = get(real_cluster, "-n", real_namespace, "deployment", revision)
    owners = {
        entry["manager"]
        for entry in deployment["metadata"].get("managedFields", [])
        if "f:replicas" in (entry.get("fieldsV1", {}).get("f:spec") or {})
    }
    assert "modeldeploy" not in owners, owners
    assert wait_phase(real_cluster, real_namespace, "digits", "Stable", timeout=30)


MOST = 6
WEIGHT = 30
HOST = "autoscale.digits.test"


def figure(line: str) -> None:
    """A figure for the notes, printed as soon as it is measured (pytest -s or -rP shows it)."""
    print(f"\n[autoscaling figure] {line}", flush=True)


def candidate_promise(stable_now: int) -> tuple[int, int]:
    """The candidate's HPA bounds the planner promises at a canary step of WEIGHT% (plan/sizing.py):
    WEIGHT% of the stable's current count, never below 1; at most WEIGHT% of maxReplicas on its own
    load (never below the floor)."""
    low = min(max(1, math.ceil(stable_now * WEIGHT / 100)), MOST)
    return low, max(low, math.ceil(MOST * WEIGHT / 100))


@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_a_canary_follows_a_scaled_up_stable_at_its_weight_and_is_promoted_at_full_size_without_loss(
    real_cluster: LocalCluster, real_namespace: str, operator_pod: Release
) -> None:
    """Load through the gateway scales the stable revision to its maxReplicas; a canary at 30%
    runs 30% of that (its HPA's bounds, however much its own share of the load asks for); on
    promote the candidate grows to the stable's current count before the route moves, and no
    request fails while traffic moves and the former stable scales down and drains."""
    server = model_server_image()
    real_cluster.import_images(server)
    namespace = real_namespace
    spec = {
        "autoscaling": autoscaling(MOST, scale_down_window=30),
        "traffic": {
            "router": "gatewayAPI",
            "gatewayAPI": {"parentRefs": [traefik.PARENT_REF], "hostnames": [HOST]},
        },
        # One step without a pause: the canary holds at 30% until promoted.
        "strategy": {"canary": {"steps": [{"weight": WEIGHT}]}, "scaleDownDelay": "15s"},
    }
    apply(real_cluster, namespace, mlserver_digits(server.reference, "1.0.0", resources=REQUESTS, **spec))
    stable = wait_phase(real_cluster, namespace, "digits", "Stable", timeout=300)["stable"]["revision"]
    wait_until("the stable's HPA reads its pods' CPU", lambda: measured(real_cluster, namespace, stable), 180)
    gateway = get(real_cluster, "-n", traefik.NAMESPACE, "service", traefik.NAME)["spec"]["clusterIP"]
    probe = Client(gateway, host=HOST)
    wait_until("the gateway answering with 1.0.0", lambda: probe.infer(sample_rows()).version == "1.0.0", 60)
    probe.close()

    with Load(gateway, host=HOST) as load:
        started = time.monotonic()
        wait_until(
            f"the stable scaled to {MOST} Ready under load",
            lambda: scale(real_cluster, namespace, stable) == (MOST, MOST),
            300,
        )
        figure(f"load start -> stable at {MOST} Ready in {time.monotonic() - started:.0f}s")

        # The canary at 30%: its HPA's bounds follow 30% of the stable's current count.
        apply(real_cluster, namespace, mlserver_digits(server.reference, "2.0.0", resources=REQUESTS, **spec))

        def at_step() -> str | None:
            candidate = md_status(real_cluster, namespace, "digits").get("candidate") or {}
            entered = candidate.get("stage") == "Canary" and candidate.get("weight") == WEIGHT
            return str(candidate["revision"]) if entered else None

        wait_until(f"the canary at {WEIGHT}%", lambda: at_step() is not None, 300)
        candidate = at_step()
        assert candidate is not None

        def settled() -> bool:
            stable_now = scale(real_cluster, namespace, stable)[0]
            bounds = hpa_bounds(real_cluster, namespace, candidate)
            replicas, ready = scale(real_cluster, namespace, candidate)
            seen = f"stable {stable_now}, candidate HPA {bounds}, replicas {replicas}, ready {ready}"
            assert bounds == candidate_promise(stable_now), seen
            assert bounds[0] <= replicas == ready <= bounds[1], seen
            return True

        wait_for("the candidate's HPA at its weight's bounds, its pods Ready", settled, 180)
        # Held for a few HPA periods while 30% of the load asks the candidate's HPA for more.
        before, _ = load.counts()
        samples = []
        for _ in range(8):
            stable_now = scale(real_cluster, namespace, stable)[0]
            bounds = hpa_bounds(real_cluster, namespace, candidate)
            replicas, ready = scale(real_cluster, namespace, candidate)
            samples.append((stable_now, bounds, replicas, ready))
            time.sleep(5)
        during, _ = load.counts()
        answered = during - before
        for stable_now, bounds, replicas, _ in samples:
            assert bounds == candidate_promise(stable_now), samples
            assert bounds[0] <= replicas <= bounds[1], samples
        stable_now, bounds, replicas, _ = samples[-1]
        share = answered["2.0.0"] / max(1, sum(answered.values()))
        figure(
            f"canary weight {WEIGHT}%: stable {stable_now} replicas, candidate {replicas} "
            f"(HPA {bounds[0]}..{bounds[1]}; ceil({WEIGHT}% x {stable_now}) = "
            f"{math.ceil(stable_now * WEIGHT / 100)}); "
            f"{share:.0%} of {sum(answered.values())} answers from 2.0.0"
        )
        assert stable_now == MOST, samples  # the stable stayed scaled up under 70% of the load

        # Promotion: the candidate grows to the stable's current count before the route moves.
        _, failed_before = load.counts()
        total_before = sum(load.counts()[0].values()) + failed_before
        old_count = scale(real_cluster, namespace, stable)[0]
        timeline = {"promote requested": load.seconds()}
        patch_action(real_cluster, namespace, {"type": "Promote"}, name="digits")
        promoting: list[tuple[int, int]] = []

        def switched() -> bool:
            status = md_status(real_cluster, namespace, "digits")
            if (status.get("stable") or {}).get("revision") == candidate:
                return True
            if (status.get("candidate") or {}).get("stage") == "Promoting":
                promoting.append(hpa_bounds(real_cluster, namespace, candidate))
            return False

        wait_until("the promotion's switch", switched, 300, interval=0.5)
        timeline["switch seen"] = load.seconds()
        at_switch = scale(real_cluster, namespace, candidate)
        pod_ips = {
            revision: pod_addresses(real_cluster, namespace, revision) for revision in (stable, candidate)
        }
        selector = get(real_cluster, "-n", namespace, "service", "digits")["spec"]["selector"]
        figure(
            f"promotion (weight 100%): old stable at {old_count}, the candidate's HPA while promoting "
            f"{sorted(set(promoting))}, {at_switch[1]} Ready at the switch"
        )
        # The switch's own reconcile gives the new stable its HPA's bounds (1..MOST) just before it
        # writes the status that says so: a read in between sees those under "Promoting".
        while promoting and promoting[-1] == (1, MOST):
            promoting.pop()
        assert promoting, "never saw the candidate in Promoting"
        assert set(promoting) == {(old_count, old_count)}, promoting
        assert at_switch[1] >= old_count, at_switch
        assert selector.get("modeldeploy.io/revision") == candidate, selector

        # Load goes on while the former stable waits out its scale-down delay and its pods drain.
        def scaled_to_zero() -> bool:
            deployment = kubetest.get(real_cluster, namespace, "deployment", stable)
            return deployment is None or deployment["spec"].get("replicas") == 0

        wait_until("the former stable scaled to 0", scaled_to_zero, 120)
        timeline["former stable scaled to 0"] = load.seconds()
        wait_until(
            "the former stable's pods gone",
            lambda: (
                not get(real_cluster, "-n", namespace, "pods", "-l", f"modeldeploy.io/revision={stable}")[
                    "items"
                ]
            ),
            180,
        )
        timeline["former stable's pods gone"] = load.seconds()
        time.sleep(3)  # requests sent just before the last pod left have come back
    answers, failed = load.counts()
    total = sum(answers.values()) + failed
    figure(
        f"across the promotion (promote -> former stable's pods gone): "
        f"{failed - failed_before} failed of {total - total_before} requests; "
        f"whole test {failed} failed of {total} ({dict(answers)})"
    )
    figure("timeline (s since load start): " + ", ".join(f"{k} {v:.1f}" for k, v in timeline.items()))
    if failed:
        gateway_log = real_cluster.kubectl(
            "-n", traefik.NAMESPACE, "logs", f"deployment/{traefik.NAME}", "--tail=2000"
        ).stdout
        lines = [line for line in gateway_log.splitlines() if namespace in line or " 50" in line]
        failures = "\n".join([*load.failures, f"pods: {pod_ips}", *lines[-20:]])
        figure(f"failed requests:\n{failures}")
    assert failed == 0, load.failures


def pod_addresses(cluster: LocalCluster, namespace: str, revision: str) -> list[str]:
    pods = get(cluster, "-n", namespace, "pods", "-l", f"modeldeploy.io/revision={revision}")["items"]
    return sorted(pod["status"].get("podIP", "") for pod in pods)
