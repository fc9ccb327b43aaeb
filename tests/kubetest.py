"""Helpers for integration tests: apply manifests, read objects, wait for conditions."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from modeldeploy_dev.binaries import REPO_ROOT, ensure_binaries
from modeldeploy_dev.inference import READY_PATH
from modeldeploy_dev.node import POD_PLACEMENT

T = TypeVar("T")
EXAMPLES = REPO_ROOT / "examples"
CRD = REPO_ROOT / "crds" / "modeldeployment.yaml"


def example(name: str, **spec_overrides: Any) -> dict[str, Any]:
    """An example manifest from examples/, with top-level spec fields replaced."""
    manifest: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    manifest["spec"].update(spec_overrides)
    return manifest


def fraud(version: str, router: str = "gatewayAPI", replicas: int = 2, **spec: Any) -> dict[str, Any]:
    """A ModelDeployment `fraud` at a model version, with the given router and extra spec fields."""
    result: dict[str, Any] = {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "fraud"},
        "spec": {
            "model": {"name": "fraud-detector", "version": version, "uri": f"s3://models/fraud/{version}"},
            "runtime": {"image": "ghcr.io/acme/fraud-server:1.4", "readinessPath": "/ready"},
            "replicas": replicas,
            "traffic": {"router": router},
            **spec,
        },
    }
    if router == "gatewayAPI":
        # No gateway controller runs beside the kwok nodes, so none writes the route's status:
        # traffic moves without waiting for one (tests that play the gateway write it themselves).
        result["spec"]["traffic"]["gatewayAPI"] = {"parentRefs": [{"name": "public"}], "acceptanceWait": "0s"}
    return result


def mlserver_digits(
    image: str,
    version: str = "2.0.0",
    name: str = "digits",
    resources: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A ModelDeployment whose pods run MLServer (``image``, images.model_server_image) with the
    demo's digit classifier at ``version`` on the real node; ``spec`` adds top-level spec fields."""
    runtime: dict[str, Any] = {
        "image": image,
        "port": 8080,
        "readinessPath": READY_PATH,
        "podTemplate": {"spec": {**POD_PLACEMENT, "terminationGracePeriodSeconds": 5}},
    }
    if resources is not None:
        runtime["resources"] = resources
    return {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": "digits", "version": version, "uri": f"s3://models/digits/{version}"},
            "replicas": 1,
            "runtime": runtime,
            **spec,
        },
    }


def apply(cluster: Any, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl(
        "-n",
        namespace,
        "apply",
        "--server-side",
        "--field-manager=test",
        "--force-conflicts",
        "-f",
        "-",
        input=yaml.safe_dump(manifest),
    )


def patch_action(cluster: Any, namespace: str, action: dict[str, Any], name: str = "fraud") -> None:
    """Exactly what the README documents: a merge patch of the status subresource."""
    cluster.kubectl(
        "-n",
        namespace,
        "patch",
        "modeldeployment",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"action": action}}),
    )


def get(cluster: Any, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl("-n", namespace, "get", kind, name, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def items(cluster: Any, namespace: str, kind: str, selector: str | None = None) -> list[dict[str, Any]]:
    args = ["-n", namespace, "get", kind, "-o", "json"]
    if selector:
        args += ["-l", selector]
    return list(json.loads(cluster.kubectl(*args).stdout)["items"])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60, interval: float = 0.25) -> T:
    """Poll probe until it returns something truthy; fail with what was last seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except Exception as error:
            last = error
        if last and not isinstance(last, Exception):
            return last  # type: ignore[return-value]
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")


def event_reasons(cluster: Any, namespace: str, *wanted: str, timeout: float = 15) -> set[str]:
    """The reasons of the namespace's Events, once ``wanted`` are among them.

    The operator posts a transition's Event right after the status write that records it: a test
    that has just seen the status may list the Events a moment before that one is stored.
    """

    def reasons() -> set[str] | None:
        found = {e["reason"] for e in items(cluster, namespace, "events")}
        return found if found >= set(wanted) else None

    return wait_for(f"Events {sorted(wanted)}", reasons, timeout)


def md_status(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    obj = get(cluster, namespace, "modeldeployment", name)
    return (obj or {}).get("status") or {}


def wait_phase(cluster: Any, namespace: str, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(
        f"{name} phase {phase}",
        lambda: ((s := md_status(cluster, namespace, name)).get("phase") == phase and s) or None,
        timeout,
    )


def condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), None)


def log_path(tmp: Path, name: str) -> Path:
    return tmp / f"{name}.log"


CHART = REPO_ROOT / "charts" / "modeldeploy"


def helm(cluster: Any, *args: str) -> subprocess.CompletedProcess[str]:
    binary = cluster.helm_path() if hasattr(cluster, "helm_path") else str(ensure_binaries()["helm"])
    return subprocess.run(
        [binary, "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=180,
    )


class Release:
    def __init__(self, cluster: Any, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.name = f"md{uuid.uuid4().hex[:6]}"
        self.fullname = f"{self.name}-modeldeploy"
        self.installed = False

    @property
    def service_account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.fullname}"

    def install(self, *values: str, values_file: Path | None = None) -> None:
        self.installed = True
        helm(
            self.cluster,
            "install", self.name, str(CHART),
            "--namespace", self.namespace,
            "--wait", "--timeout", "120s",
            *(("--values", str(values_file)) if values_file else ()),
            *(arg for value in values for arg in ("--set", value)),
        )  # fmt: skip

    def uninstall(self) -> None:
        if self.installed:
            # --ignore-not-found: a test that restarts the cluster (the real node's `down` test)
            # leaves a session-long release nothing to remove.
            helm(
                self.cluster,
                "uninstall",
                self.name,
                "--namespace",
                self.namespace,
                "--wait",
                "--ignore-not-found",
            )

    def can(self, verb: str, resource: str, *where: str) -> bool:
        """`kubectl auth can-i ... --as` the operator's ServiceAccount."""
        result = self.cluster.kubectl(
            "auth", "can-i", verb, resource, *where, f"--as={self.service_account}", check=False
        )
        assert result.stdout.strip() in {"yes", "no"}, result.stdout + result.stderr
        return result.stdout.strip() == "yes"


def operator_values(cluster: Any, image: Any, directory: Path) -> Path:
    """Chart values that run the operator image built here (images.Image) on the real node."""
    cluster.import_images(image)
    repository, tag = image.reference.rsplit(":", 1)
    values = directory / "operator-values.yaml"
    values.write_text(
        yaml.safe_dump(
            {"image": {"repository": repository, "tag": tag, "pullPolicy": "Never"}, **POD_PLACEMENT}
        )
    )
    return values
