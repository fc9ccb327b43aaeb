"""Deleting a namespace that holds ModelDeployments: it goes, whether the operator serves the
whole cluster or named namespaces (`--namespace`, the chart's watchNamespaces), while its children
take a while to go. Each test deletes the `namespace` fixture's namespace itself and waits for
it to be gone (the fixture's own delete afterwards finds nothing)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from kubetest import apply, fraud, wait_for, wait_phase
from modeldeploy_dev.operator import OperatorProcess

HOLD = "modeldeploy.io/test-hold"


def fill_and_delete(cluster: Any, namespace: str) -> None:
    apply(cluster, namespace, fraud("1.0.0", router="service", replicas=1))
    revision = wait_phase(cluster, namespace, "fraud", "Stable")["stable"]["revision"]
    # The revision's Deployment takes a while to go, as one whose pods shut down slowly does:
    # the operator's cleanup is still waiting for it when the namespace controller writes the
    # namespace's first terminating status, which is when kopf used to stop watching.
    patch = json.dumps({"metadata": {"finalizers": [HOLD]}})
    cluster.kubectl("-n", namespace, "patch", "deployment", revision, "--type=merge", "-p", patch)
    cluster.kubectl("delete", "namespace", namespace, "--wait=false")
    wait_for(
        "the namespace's terminating status",
        lambda: (
            "NamespaceContentRemaining" in cluster.kubectl("get", "namespace", namespace, "-o", "json").stdout
        ),
        timeout=60,
    )
    time.sleep(3)
    release = json.dumps({"metadata": {"finalizers": None}})
    cluster.kubectl("-n", namespace, "patch", "deployment", revision, "--type=merge", "-p", release)
    wait_for(
        f"namespace {namespace} gone",
        lambda: cluster.kubectl("get", "namespace", namespace, check=False).returncode != 0,
        timeout=90,
    )


@pytest.mark.usefixtures("operator")
def test_a_namespace_with_model_deployments_is_deleted_under_a_clusterwide_operator(
    cluster: Any, namespace: str
) -> None:
    fill_and_delete(cluster, namespace)


def test_a_served_namespace_with_model_deployments_is_deleted_under_a_namespaced_operator(
    cluster: Any, namespace: str, own_operators: Callable[..., OperatorProcess]
) -> None:
    # The cluster admin's identity: like the chart's namespaced RBAC, it may list and watch
    # Namespaces, which is when kopf follows the served namespace's own lifecycle.
    own_operators("--namespace", namespace, kubeconfig=cluster.kubeconfig)
    fill_and_delete(cluster, namespace)
