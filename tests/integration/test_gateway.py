"""The real node's gateway (Traefik's Gateway API provider, a pod there) carries the traffic
the operator's HTTPRoutes declare to MLServer model pods: the canary split and the
mirror, both counted at the model servers.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from kubetest import Release, apply, md_status, operator_values, wait_for, wait_phase
from modeldeploy_dev.cluster import LocalCluster
from modeldeploy_dev.demo import models
from modeldeploy_dev.gateway import CONTROLLER_NAME, NAME, NAMESPACE, PARENT_REF
from modeldeploy_dev.images import model_server_image, operator_image
from modeldeploy_dev.inference import Client, served_by_revision
from modeldeploy_dev.node import NODE_NAME, POD_PLACEMENT
from modeldeploy_dev.processes import wait_until

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
def operated(real_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A namespace with the operator running as the chart's pod on the real node."""
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    real_cluster.kubectl("create", "namespace", namespace)
    wait_until(
        "the namespace's default ServiceAccount",
        lambda: real_cluster.kubectl("-n", namespace, "get", "sa", "default", check=False).returncode == 0,
        30,
    )
    real_cluster.import_images(model_server_image())
    release = Release(real_cluster, namespace)
    try:
        release.install(
            values_file=operator_values(real_cluster, operator_image(), tmp_path_factory.mktemp("op"))
        )
        yield namespace
    finally:
        release.uninstall()
        real_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def digits(name: str, version: str, host: str, strategy: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": "digits", "version": version, "uri": f"s3://models/digits/{version}"},
            "replicas": 1,
            "runtime": {
                "image": model_server_image().reference,
                "port": 8080,
                "readinessPath": "/v2/health/ready",
                "podTemplate": {"spec": {**POD_PLACEMENT, "terminationGracePeriodSeconds": 5}},
            },
            "traffic": {
                "router": "gatewayAPI",
                "gatewayAPI": {"parentRefs": [PARENT_REF], "hostnames": [host]},
            },
            "strategy": strategy,
        },
    }


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
