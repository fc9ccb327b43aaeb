"""argocd/health.lua against ModelDeployments recorded live from the operator, phase by phase.

The unit table (tests/unit/test_argocd_health.py) covers every phase with
written fixtures; this test records real objects as the operator leaves them
and checks the health Argo CD would show for each.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from kubetest import apply, fraud, get, patch_action, wait_for, wait_phase

pytestmark = pytest.mark.usefixtures("operator")

SANDBOX = Path(__file__).resolve().parents[1] / "unit" / "test_argocd_lua_sandbox.py"


def lua() -> Any:
    spec = importlib.util.spec_from_file_location("argocd_lua_sandbox", SANDBOX)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ArgoCDLua()


def manifest(version: str, **spec: Any) -> dict[str, Any]:
    return fraud(version, replicas=1, **spec)


def test_health_of_live_objects_in_each_phase(cluster: Any, namespace: str) -> None:
    argo = lua()
    recorded: dict[str, dict[str, Any]] = {}

    def record(label: str) -> dict[str, str]:
        obj = get(cluster, namespace, "modeldeployment", "fraud")
        assert obj is not None
        recorded[label] = obj
        health: dict[str, str] = argo.health(obj)
        return health

    canary = {"canary": {"steps": [{"weight": 20}]}}
    apply(cluster, namespace, manifest("1.0.0", strategy=canary))
    wait_phase(cluster, namespace, "fraud", "Stable")
    assert record("stable")["status"] == "Healthy"

    apply(cluster, namespace, manifest("2.0.0", strategy=canary))
    wait_for(
        "canary waiting for promote",
        lambda: (
            "waiting for promote"
            in (get(cluster, namespace, "modeldeployment", "fraud") or {})
            .get("status", {})
            .get("message", "")
        ),
    )
    assert record("canary-waiting")["status"] in ("Progressing", "Suspended")

    patch_action(cluster, namespace, {"type": "Abort"})
    wait_phase(cluster, namespace, "fraud", "RolledBack")
    assert record("rolled-back")["status"] == "Degraded"

    apply(cluster, namespace, manifest("3.0.0", strategy=canary, paused=True))
    wait_phase(cluster, namespace, "fraud", "Paused")
    assert record("paused")["status"] == "Suspended"

    apply(
        cluster,
        namespace,
        manifest("3.0.0", analysis={"metrics": [{"name": "e", "query": "x{{nope}}", "max": 1}]}),
    )
    wait_phase(cluster, namespace, "fraud", "Invalid")
    assert record("invalid")["status"] == "Degraded"

    # A spec change the operator has not observed yet is Progressing, whatever the phase says.
    stale = json.loads(json.dumps(recorded["stable"]))
    stale["metadata"]["generation"] = stale["status"]["observedGeneration"] + 1
    assert argo.health(stale)["status"] == "Progressing"
