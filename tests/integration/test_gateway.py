"""The real node's gateway (Traefik's Gateway API provider, a pod there) carries the traffic
the operator's HTTPRoutes declare to MLServer model pods: the canary split and the
mirror, both counted at the model servers; and under the demo's load through it, no
request fails across a promotion, an undo and their scale-downs, nor while the fallback
takes over from a stable revision that lost its pods.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubetest import Release, apply, md_status, mlserver_digits, patch_action, wait_for, wait_phase
from modeldeploy_dev.cluster import LocalCluster
from modeldeploy_dev.demo import models
from modeldeploy_dev.demo.load import Load, Tally
from modeldeploy_dev.gateway import CONTROLLER_NAME, NAME, NAMESPACE, PARENT_REF
from modeldeploy_dev.images import model_server_image
from modeldeploy_dev.inference import Client, served_by_revision
from modeldeploy_dev.node import NODE_NAME
from modeldeploy_dev.processes import StartupError, wait_until

COLD_BUILD_TIMEOUT = 900
REQUESTS = 400
# Traefik's weighted round robin is deterministic, not random: its split is within a
# request or two of the weight. The tolerance leaves room for requests a pod answered
# while another's endpoints were still being read, not for chance.
SPLIT_TOLERANCE = 0.03


def get(cluster: LocalCluster, *args: str) -> dict[str, Any]:
    document = json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def operated(real_cluster: LocalCluster, operator_pod: Release) -> Iterator[str]:
    """A namespace the session's operator pod (the chart, its image, on the real node) serves:
    a release of its own beside it would be a second operator competing for the same objects."""
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    real_cluster.kubectl("create", "namespace", namespace)
    wait_until(
        "the namespace's default ServiceAccount",
        lambda: real_cluster.kubectl("-n", namespace, "get", "sa", "default", check=False).returncode == 0,
        30,
    )
    real_cluster.import_images(model_server_image())
    try:
        yield namespace
    finally:
        real_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def digits(name: str, version: str, host: str, strategy: dict[str, Any], **spec: Any) -> dict[str, Any]:
    traffic = {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [PARENT_REF], "hostnames": [host]}}
    return mlserver_digits(
        model_server_image().reference, version, name, traffic=traffic, strategy=strategy, **spec
    )


def route_taken(
    cluster: LocalCluster, namespace: str, name: str, generation_check: Any
) -> dict[str, Any] | None:
    """The HTTPRoute once it matches generation_check and Traefik has Accepted and resolved it."""
    route = get(cluster, "-n", namespace, "httproute", name)
    if not generation_check(route["spec"]):
        return None
    for parent in route.get("status", {}).get("parents", []):
        if parent["controllerName"] != CONTROLLER_NAME:
            continue
        conditions = {c["type"]: c for c in parent["conditions"]}
        if all(
            conditions.get(kind, {}).get("status") == "True"
            and conditions[kind].get("observedGeneration") == route["metadata"]["generation"]
            for kind in ("Accepted", "ResolvedRefs")
        ):
            return route
    return None


def gateway_client(cluster: LocalCluster, host: str) -> Client:
    address = get(cluster, "-n", NAMESPACE, "service", NAME)["spec"]["clusterIP"]
    return Client(address, 80, host=host)


def rows(count: int) -> tuple[list[list[float]], list[int]]:
    _, features, _, labels = models.split()
    return [[float(v) for v in row] for row in features[:count]], [int(label) for label in labels[:count]]


def wait_answering(client: Client, version: str) -> None:
    """Traefik applies a route a moment after it reports it: wait for the stable's first answer."""
    sample, _ = rows(1)
    wait_until(f"the gateway answering with {version}", lambda: client.infer(sample).version == version, 60)


@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_the_gateway_is_a_traefik_pod_on_the_real_node_and_its_gateway_is_programmed(
    real_cluster: LocalCluster,
) -> None:
    [pod] = get(real_cluster, "-n", NAMESPACE, "pods")["items"]
    assert pod["spec"]["nodeName"] == NODE_NAME
    assert pod["spec"]["containers"][0]["image"].startswith("localhost/modeldeploy/gateway:")
    gateway = get(real_cluster, "-n", NAMESPACE, "gateway", NAME)
    assert {c["type"]: c["status"] for c in gateway["status"]["conditions"]}["Programmed"] == "True"
    gateway_class = get(real_cluster, "gatewayclass", gateway["spec"]["gatewayClassName"])
    assert {c["type"]: c["status"] for c in gateway_class["status"]["conditions"]}["Accepted"] == "True"


@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_the_canary_split_counted_at_the_model_servers_matches_the_declared_weight(
    real_cluster: LocalCluster, operated: str
) -> None:
    host = "split.digits.test"
    strategy = {"canary": {"steps": [{"weight": 30}]}}  # no pause: holds at 30% until promoted
    apply(real_cluster, operated, digits("split", "1.0.0", host, strategy))
    stable = wait_phase(real_cluster, operated, "split", "Stable", timeout=240)["stable"]["revision"]
    client = gateway_client(real_cluster, host)
    wait_answering(client, "1.0.0")

    apply(real_cluster, operated, digits("split", "2.0.0", host, strategy))

    def at_thirty(spec: dict[str, Any]) -> bool:
        return sorted(ref["weight"] for ref in spec["rules"][0]["backendRefs"]) == [30, 70]

    route = wait_for(
        "the route at 30% Accepted by Traefik",
        lambda: route_taken(real_cluster, operated, "split", at_thirty),
        240,
    )
    candidate = md_status(real_cluster, operated, "split")["candidate"]["revision"]
    weights = {ref["name"]: ref["weight"] for ref in route["spec"]["rules"][0]["backendRefs"]}
    assert weights == {"split": 70, "split-candidate": 30}, weights
    wait_until(
        "the gateway answering from the candidate too",
        lambda: client.infer(rows(1)[0]).version == "2.0.0",
        60,
    )

    before = served_by_revision(real_cluster.kubectl, operated, [stable, candidate])
    sample, _ = rows(1)
    answers = Counter(client.infer(sample).version for _ in range(REQUESTS))
    client.close()
    after = served_by_revision(real_cluster.kubectl, operated, [stable, candidate])
    served = {revision: after[revision] - before[revision] for revision in (stable, candidate)}

    assert answers == Counter({"1.0.0": answers["1.0.0"], "2.0.0": answers["2.0.0"]}), answers
    assert sum(answers.values()) == REQUESTS  # every request answered 200 by a model
    # The servers counted what the clients saw: every answer once, at the version it named.
    assert served == {stable: answers["1.0.0"], candidate: answers["2.0.0"]}, (served, answers)
    observed = served[candidate] / REQUESTS
    print(f"declared 30%, observed {observed:.1%} ({served[candidate]:.0f} of {REQUESTS}) at the servers")
    assert abs(observed - 0.30) <= SPLIT_TOLERANCE, served


@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_mirrored_requests_reach_the_candidate_while_users_get_only_stable_answers(
    real_cluster: LocalCluster, operated: str
) -> None:
    host = "shadow.digits.test"
    strategy = {"shadow": {"percent": 100, "duration": "1h"}}
    apply(real_cluster, operated, digits("shadow", "1.0.0", host, strategy))
    stable = wait_phase(real_cluster, operated, "shadow", "Stable", timeout=240)["stable"]["revision"]
    client = gateway_client(real_cluster, host)
    wait_answering(client, "1.0.0")

    apply(real_cluster, operated, digits("shadow", "2.0.0", host, strategy))

    def mirroring(spec: dict[str, Any]) -> bool:
        return any(f["type"] == "RequestMirror" for f in spec["rules"][0].get("filters", []))

    route = wait_for(
        "the mirroring route Accepted by Traefik",
        lambda: route_taken(real_cluster, operated, "shadow", mirroring),
        240,
    )
    [backend] = route["spec"]["rules"][0]["backendRefs"]
    [mirror] = route["spec"]["rules"][0]["filters"]
    assert backend["weight"] == 100 and mirror["requestMirror"]["percent"] == 100
    candidate = md_status(real_cluster, operated, "shadow")["candidate"]["revision"]
    wait_until(
        "the candidate's pod Ready",
        lambda: (
            all(
                c["status"] == "True"
                for pod in get(
                    real_cluster, "-n", operated, "pods", "-l", f"modeldeploy.io/revision={candidate}"
                )["items"]
                for c in pod.get("status", {}).get("conditions", [])
                if c["type"] == "Ready"
            )
            and bool(
                get(real_cluster, "-n", operated, "pods", "-l", f"modeldeploy.io/revision={candidate}")[
                    "items"
                ]
            )
        ),
        120,
    )
    # The first mirrored copy shows Traefik has the candidate's endpoint.
    sample, _ = rows(1)
    wait_until(
        "a mirrored request at the candidate",
        lambda: (
            client.infer(sample).version == "1.0.0"
            and served_by_revision(real_cluster.kubectl, operated, [candidate])[candidate] > 0
        ),
        60,
    )

    # Copies sent beside the requests above may still be landing: start from settled counts.
    settled: list[dict[str, float]] = []

    def unchanged() -> bool:
        settled.append(served_by_revision(real_cluster.kubectl, operated, [stable, candidate]))
        return len(settled) > 1 and settled[-1] == settled[-2]

    wait_until("the model servers' counts settled", unchanged, 30, interval=1)
    before = settled[-1]
    answers = Counter(client.infer(sample).version for _ in range(REQUESTS))
    client.close()
    assert answers == Counter({"1.0.0": REQUESTS}), answers  # users only ever see stable's answers

    def copies() -> dict[str, float]:
        after = served_by_revision(real_cluster.kubectl, operated, [stable, candidate])
        return {revision: after[revision] - before[revision] for revision in (stable, candidate)}

    # Mirrored copies are sent beside the user's request and may land a moment later.
    wait_until("every mirrored copy at the candidate", lambda: copies()[candidate] >= REQUESTS, 30)
    assert copies() == {stable: REQUESTS, candidate: REQUESTS}
    assert md_status(real_cluster, operated, "shadow")["candidate"]["stage"] == "Shadow"


# The demo's load (modeldeploy_dev.demo.load): held-out rows through the gateway, by 4 workers.
LOAD_RATE = 20  # requests per second


def load_through_gateway(cluster: LocalCluster, host: str, rate: float = LOAD_RATE) -> Load:
    address = get(cluster, "-n", NAMESPACE, "service", NAME)["spec"]["clusterIP"]
    features, labels = rows(200)
    return Load(address, host, models.HeldOut(features, labels), rate, max_requests=10**6, max_seconds=1800)


class Phases:
    """What the load's users saw in each phase of a scenario: (failed, sent), from the load's tally."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self.last = load.snapshot()
        self.counts: dict[str, tuple[int, int]] = {}

    def end(self, phase: str) -> tuple[int, int]:
        now = self.load.snapshot()
        self.counts[phase] = (now.errors - self.last.errors, now.sent - self.last.sent)
        self.last = now
        return self.counts[phase]

    def report(self, scenario: str) -> str:
        tally: Tally = self.load.snapshot()
        lines = [
            f"{scenario}: failed/sent per phase at the client ({self.load.rate:g} requests/s, the gateway)"
        ]
        lines += [f"  {phase}: {failed}/{sent}" for phase, (failed, sent) in self.counts.items()]
        lines += [f"  first failures: {tally.failures}"] if tally.failures else []
        return "\n".join(lines)


def pods_of(cluster: LocalCluster, namespace: str, revision: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = get(
        cluster, "-n", namespace, "pods", "-l", f"modeldeploy.io/revision={revision}"
    )["items"]
    return found


def ready_pods(cluster: LocalCluster, namespace: str, revision: str) -> int:
    return sum(
        1
        for pod in pods_of(cluster, namespace, revision)
        if not pod["metadata"].get("deletionTimestamp")
        and {"type": "Ready", "status": "True"}
        in [{k: c[k] for k in ("type", "status")} for c in pod.get("status", {}).get("conditions", [])]
    )


def wait_gone(cluster: LocalCluster, namespace: str, revision: str) -> None:
    """The revision scaled to zero and its last pod gone: scale-down delay, drain and shutdown over."""
    wait_until(
        f"{revision} scaled to zero and its pods gone",
        lambda: (
            get(cluster, "-n", namespace, "deployment", revision)["spec"]["replicas"] == 0
            and not pods_of(cluster, namespace, revision)
        ),
        180,
        interval=1,
    )


def wait_stable(cluster: LocalCluster, namespace: str, name: str, version: str) -> dict[str, Any]:
    status: dict[str, Any] = wait_for(
        f"{name} stable at {version}",
        lambda: (
            (s := md_status(cluster, namespace, name)).get("stable", {}).get("version") == version
            and not s.get("candidate")
            and s
        ),
        240,
    )
    return status


def rollout_under_load(
    cluster: LocalCluster,
    namespace: str,
    name: str,
    strategy: dict[str, Any],
    rate: float = LOAD_RATE,
    **runtime: Any,
) -> Phases:
    """1.0.0 promoted to 2.0.0, then undone back to 1.0.0, under continuous load; each phase lasts
    until the revision the traffic left has been scaled down and its pods are gone."""
    host = f"{name}.digits.test"

    def manifest(version: str) -> dict[str, Any]:
        document = digits(name, version, host, strategy)
        document["spec"]["runtime"].update(runtime)
        return document

    apply(cluster, namespace, manifest("1.0.0"))
    v1 = wait_stable(cluster, namespace, name, "1.0.0")["stable"]["revision"]
    client = gateway_client(cluster, host)
    wait_answering(client, "1.0.0")
    client.close()

    load = load_through_gateway(cluster, host, rate)
    phases = Phases(load)
    load.start()
    try:
        wait_until("the first answers", lambda: load.snapshot().sent >= rate, 30)
        phases.end("steady on 1.0.0")
        apply(cluster, namespace, manifest("2.0.0"))
        v2 = wait_stable(cluster, namespace, name, "2.0.0")["stable"]["revision"]
        wait_gone(cluster, namespace, v1)
        phases.end("promotion to 2.0.0, 1.0.0 scaled down")

        patch_action(cluster, namespace, {"type": "Undo"}, name=name)  # kubectl modeldeploy undo undo
        status = wait_stable(cluster, namespace, name, "1.0.0")
        assert status["stable"]["revision"] == v1, status
        wait_gone(cluster, namespace, v2)
        phases.end("undo to 1.0.0, 2.0.0 scaled down")
    finally:
        load.stop()
    phases.end("stop")
    assert load.snapshot().answered["1.0.0"] > 0 and load.snapshot().answered["2.0.0"] > 0
    return phases


@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_no_request_fails_across_a_promotion_and_an_undo_with_their_scale_downs(
    real_cluster: LocalCluster, operated: str
) -> None:
    """Scale-down delay, drain (preStop) and readiness, as rendered by default: 0 failed requests."""
    phases = rollout_under_load(real_cluster, operated, "undo", {})
    print("\n" + phases.report("promotion and undo"))
    assert all(failed == 0 for failed, _ in phases.counts.values()), phases.report("promotion and undo")
    assert all(sent > 0 for phase, (_, sent) in phases.counts.items() if phase != "stop"), phases.counts


def on_fallback(cluster: LocalCluster, namespace: str, name: str) -> bool:
    traffic = md_status(cluster, namespace, name).get("traffic") or []
    return [(share["role"], share["weight"]) for share in traffic] == [("fallback", 100)]


FAILURES = {"deleted": (), "killed": ("--grace-period=0", "--force")}


def failover_under_load(cluster: LocalCluster, namespace: str, name: str, rounds: int) -> Phases:
    """2.0.0 stable with 1.0.0 standing by as the fallback (PreviousRevision); under continuous
    load, every pod of 2.0.0 goes, deleted (drain and all) or killed at once, ``rounds`` times
    each; each time traffic returns to 2.0.0 once its new pod is Ready."""
    host = f"{name}.digits.test"
    fallback = {"mode": "PreviousRevision", "replicas": 1, "trigger": {"interval": "5s", "recoverAfter": 1}}
    apply(cluster, namespace, digits(name, "1.0.0", host, {}, fallback=fallback))
    v1 = wait_stable(cluster, namespace, name, "1.0.0")["stable"]["revision"]
    apply(cluster, namespace, digits(name, "2.0.0", host, {}, fallback=fallback))
    v2 = wait_stable(cluster, namespace, name, "2.0.0")["stable"]["revision"]
    wait_until("1.0.0 kept Ready as the fallback", lambda: ready_pods(cluster, namespace, v1) >= 1, 120)
    client = gateway_client(cluster, host)
    wait_answering(client, "2.0.0")
    client.close()

    load = load_through_gateway(cluster, host)
    phases = Phases(load)

    def answers_from(version: str, count: int, unless: Callable[[], bool] = lambda: False) -> None:
        """Wait for ``count`` more answers from ``version``, or until ``unless`` holds; on timeout,
        say what the load saw and where the operator's status put the traffic."""
        start = load.snapshot().answered[version]
        try:
            wait_until(
                f"{count} more answers from {version}",
                lambda: load.snapshot().answered[version] >= start + count or unless(),
                240,
            )
        except StartupError as error:
            traffic = md_status(cluster, namespace, name).get("traffic")
            raise StartupError(f"{error}\n{phases.report('so far')}\nstatus.traffic: {traffic}") from error

    load.start()
    try:
        answers_from("2.0.0", LOAD_RATE)
        phases.end("steady on 2.0.0")
        for number, (how, flags) in enumerate([*FAILURES.items()] * rounds):
            selector = f"modeldeploy.io/revision={v2}"
            cluster.kubectl("-n", namespace, "delete", "pods", "-l", selector, "--wait=false", *flags)
            wait_until("all traffic on the fallback", lambda: on_fallback(cluster, namespace, name), 60)
            answers_from("1.0.0", LOAD_RATE // 2)
            phases.end(f"{number + 1}. 2.0.0's pods {how}: failover to the fallback 1.0.0")
            # The stable's new pod may be Ready, and traffic back, before 2 s more of answers.
            answers_from("1.0.0", 2 * LOAD_RATE, unless=lambda: not on_fallback(cluster, namespace, name))
            phases.end(f"{number + 1}. on the fallback 1.0.0")
            wait_until(
                "traffic back on 2.0.0", lambda: not on_fallback(cluster, namespace, name), 240, interval=0.5
            )
            answers_from("2.0.0", 2 * LOAD_RATE)
            phases.end(f"{number + 1}. 2.0.0's pods {how}: back on 2.0.0 once Ready")
    finally:
        load.stop()
    phases.end("stop")
    return phases


@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_the_fallback_takes_over_under_load_when_the_stable_revision_loses_its_pods(
    real_cluster: LocalCluster, operated: str
) -> None:
    """No request fails while the fallback takes over, once it serves, nor when traffic returns.

    The gateway balances over the Services' ClusterIPs (kube-proxy picks the pod) and retries
    a request no backend took: those arriving between the stable's last pod leaving and
    kube-proxy applying the operator's move of the stable Service to the fallback's pods are
    sent again until it has (README "Traffic safety", modeldeploy_dev.gateway).
    """
    phases = failover_under_load(real_cluster, operated, "failover", rounds=3)
    report = phases.report("fallback failover")
    print("\n" + report)
    assert len(phases.counts) == 1 + 6 * 3 + 1, report
    assert all(failed == 0 for failed, _ in phases.counts.values()), report
    failover = [counts for phase, counts in phases.counts.items() if "failover" in phase]
    assert len(failover) == 6 and all(sent > 0 for _, sent in failover), report
