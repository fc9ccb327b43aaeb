"""An operator watching objects at rest costs the API server nothing.

Counted two ways: the API server's own audit log (every request the operator's
identity made, watches included) and the operator's request counter.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import Any

import pytest

from kubetest import apply, example, md_status, wait_for
from modeldeploy_dev.operator import OperatorProcess

MODELS = 20
IDLE_SECONDS = 60
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def audit_requests(path: Any, user: str, since: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    with open(path) as log:
        for line in log:
            entry = json.loads(line)
            if entry.get("user", {}).get("username") != user:
                continue
            if entry["requestReceivedTimestamp"] < since:
                continue
            counts[entry["verb"]] += 1
    return counts


def operator_requests(operator: OperatorProcess) -> Counter[str]:
    counts: Counter[str] = Counter()
    for match in re.finditer(
        r'^modeldeploy_kube_api_requests_total\{code="[^"]*",verb="([^"]+)"\} ([0-9.e+]+)$',
        operator.metrics(),
        re.MULTILINE,
    ):
        counts[match.group(1)] += int(float(match.group(2)))
    return counts


def wait_for_rest(cluster: Any) -> None:
    # Earlier tests' namespaces may still be terminating, which is work, not rest.
    wait_for(
        "no namespace terminating",
        lambda: (
            not [
                ns
                for ns in json.loads(cluster.kubectl("get", "namespaces", "-o", "json").stdout)["items"]
                if ns["status"].get("phase") == "Terminating"
            ]
        ),
        timeout=120,
        interval=1,
    )
    time.sleep(5)  # let the last status writes and their watch events settle


def test_twenty_model_deployments_at_rest_for_a_minute_cost_zero_writes(
    cluster: Any, namespace: str, operator: OperatorProcess
) -> None:
    for i in range(MODELS):
        manifest = example("minimal")
        manifest["metadata"]["name"] = f"model-{i:02d}"
        apply(cluster, namespace, manifest)
    wait_for(
        f"{MODELS} ModelDeployments Stable",
        lambda: all(
            md_status(cluster, namespace, f"model-{i:02d}").get("phase") == "Stable" for i in range(MODELS)
        ),
        timeout=180,
        interval=1,
    )
    wait_for_rest(cluster)

    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    before = operator_requests(operator)
    time.sleep(IDLE_SECONDS)
    after = operator_requests(operator)

    client_calls = after - before
    client_writes = sum(
        n for verb, n in client_calls.items() if verb in {"apply", "patch", "create", "delete"}
    )
    print(f"\nidle {IDLE_SECONDS}s, {MODELS} ModelDeployments; operator client calls: {dict(client_calls)}")
    assert client_writes == 0, client_calls

    if getattr(cluster, "local", False):
        user = operator.username  # type: ignore[attr-defined]
        audited = audit_requests(cluster.audit_log, user, since)
        writes = sum(n for verb, n in audited.items() if verb in WRITE_VERBS)
        reads = sum(n for verb, n in audited.items() if verb not in WRITE_VERBS)
        print(f"audit log, user {user}, {IDLE_SECONDS}s idle: {dict(audited)}; reads={reads}")
        assert writes == 0, audited
        # Watches stay open (a reconnect now and then is a read); nothing polls.
        assert reads <= 2 * 6, audited
    else:
        print("no audit log on an existing cluster: counted with the operator's own request counter only")


AUTOSCALED = 6
SCALING = {"minReplicas": 1, "maxReplicas": 10}


def deployment_of(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    listed = cluster.kubectl(
        "get", "deployments", "-n", namespace, "-l", f"app.kubernetes.io/instance={name}", "-o", "json"
    )
    (item,) = json.loads(listed.stdout)["items"]
    result: dict[str, Any] = item
    return result


def replicas_owners(deployment: dict[str, Any]) -> set[str]:
    """The field managers that own spec.replicas."""
    return {
        entry["manager"]
        for entry in deployment["metadata"].get("managedFields", [])
        if "f:replicas" in (entry.get("fieldsV1", {}).get("f:spec") or {})
    }


@pytest.mark.timeout(300)
def test_autoscaled_model_deployments_let_their_hpas_scale_with_zero_operator_writes(
    cluster: Any, namespace: str, operator: OperatorProcess
) -> None:
    names = [f"scaled-{i:02d}" for i in range(AUTOSCALED)]
    for name in names:
        manifest = example("minimal")
        manifest["metadata"]["name"] = name
        manifest["spec"]["replicas"] = 2
        manifest["spec"]["autoscaling"] = SCALING
        apply(cluster, namespace, manifest)
    wait_for(
        f"{AUTOSCALED} autoscaled ModelDeployments Stable",
        lambda: all(md_status(cluster, namespace, n).get("phase") == "Stable" for n in names),
        timeout=180,
        interval=1,
    )
    hpas = json.loads(cluster.kubectl("get", "hpa", "-n", namespace, "-o", "json").stdout)["items"]
    assert len(hpas) == AUTOSCALED
    for hpa in hpas:
        assert hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 10
        assert hpa["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    for name in names:
        deployment = deployment_of(cluster, namespace, name)
        assert deployment["spec"]["replicas"] == 2  # the starting size
        # The operator's own apply never claims the count: dropping it could reset it.
        assert "modeldeploy" not in replicas_owners(deployment), deployment["metadata"]["managedFields"]
    wait_for_rest(cluster)

    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    before = operator_requests(operator)
    # Scale as an HPA does, through the scale subresource, several times over the window.
    sizes = [5, 3, 8, 1]
    for size in sizes:
        for name in names:
            target = deployment_of(cluster, namespace, name)["metadata"]["name"]
            cluster.kubectl("scale", "deployment", target, "-n", namespace, f"--replicas={size}")
        time.sleep(IDLE_SECONDS / len(sizes))
    after = operator_requests(operator)

    for name in names:
        assert deployment_of(cluster, namespace, name)["spec"]["replicas"] == sizes[-1]  # not fought
    client_calls = after - before
    client_writes = sum(
        n for verb, n in client_calls.items() if verb in {"apply", "patch", "create", "delete"}
    )
    print(
        f"\n{AUTOSCALED} autoscaled ModelDeployments scaled {len(sizes)} times in {IDLE_SECONDS}s; "
        f"operator client calls: {dict(client_calls)}"
    )
    assert client_writes == 0, client_calls
    if getattr(cluster, "local", False):
        audited = audit_requests(cluster.audit_log, operator.username, since)  # type: ignore[attr-defined]
        writes = sum(n for verb, n in audited.items() if verb in WRITE_VERBS)
        print(f"audit log while the HPAs scaled: {dict(audited)}")
        assert writes == 0, audited
