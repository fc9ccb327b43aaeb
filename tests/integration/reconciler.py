"""Helpers of the reconciler scenarios (test_reconciler.py on the operator pod,
test_reconciler_restart.py on the host process)."""

from __future__ import annotations

from typing import Any

from kubetest import example, get

UNREADY = {"metadata": {"annotations": {"kwok.modeldeploy.io/unready": "true"}}}


def gateway_manifest(version: str = "3.1.0", **spec: Any) -> dict[str, Any]:
    manifest = example("canary-gateway-api", strategy=None, analysis=None, replicas=2)
    manifest["spec"] = {k: v for k, v in manifest["spec"].items() if v is not None}
    manifest["spec"]["model"]["version"] = version
    manifest["spec"].update(spec)
    return manifest


def service_revision(cluster: Any, namespace: str, name: str) -> str | None:
    svc = get(cluster, namespace, "service", name)
    return (svc or {}).get("spec", {}).get("selector", {}).get("modeldeploy.io/revision")
