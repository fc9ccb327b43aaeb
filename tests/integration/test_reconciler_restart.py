"""The reconciler survives the operator killed mid-rollout: it needs an operator it may kill,
so it runs against the host process (the other reconciler scenarios run against the chart's
pod: test_reconciler.py)."""

from __future__ import annotations

from typing import Any

import pytest
from reconciler import UNREADY, gateway_manifest, service_revision

from kubetest import apply, get, items, wait_for, wait_phase
from modeldeploy_dev.operator import OperatorProcess

pytestmark = pytest.mark.usefixtures("operator")


def test_operator_killed_mid_version_change_converges_after_restart(
    cluster: Any, namespace: str, operator: OperatorProcess
) -> None:
    apply(cluster, namespace, gateway_manifest("3.1.0"))
    old = wait_phase(cluster, namespace, "fraud", "Stable")["stable"]["revision"]
    manifest = gateway_manifest("3.2.0")
    manifest["spec"]["runtime"]["podTemplate"] = UNREADY
    apply(cluster, namespace, manifest)
    new = wait_phase(cluster, namespace, "fraud", "Progressing")["candidate"]["revision"]
    operator.kill()
    try:
        wait_for(
            "new pods running",
            lambda: len(items(cluster, namespace, "pods", f"modeldeploy.io/revision={new}")) == 2,
        )
        for pod in items(cluster, namespace, "pods", f"modeldeploy.io/revision={new}"):
            cluster.kubectl(
                "-n", namespace, "annotate", "pod", pod["metadata"]["name"], "kwok.modeldeploy.io/unready-"
            )
        assert service_revision(cluster, namespace, "fraud") == old  # nobody promoted while it was down
    finally:
        operator.start()
    status = wait_phase(cluster, namespace, "fraud", "Stable")
    assert status["stable"]["revision"] == new
    assert service_revision(cluster, namespace, "fraud") == new
    wait_for("old scaled down", lambda: get(cluster, namespace, "deployment", old)["spec"]["replicas"] == 0)
    assert [(h["revision"], h["outcome"]) for h in status["history"]][-2:] == [
        (old, "Promoted"),
        (new, "Promoted"),
    ]
