"""Admission against a real API server: the generated CRD accepts every example and refuses every
invalid manifest with a message naming the field, the lock holds, kubectl explain and kubectl get
show what the models document, and re-applying a manifest changes nothing.

No operator runs here: these tests are about the API alone, so statuses are set by hand
through the status subresource.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from modeldeploy.api import LOCKED_MESSAGE

if TYPE_CHECKING:
    from modeldeploy_dev.cluster import LocalCluster

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "modeldeployment.yaml"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
INVALID = sorted((ROOT / "tests" / "manifests" / "invalid").glob("*.yaml"))


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def eventually(what: str, attempt: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not attempt():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def crd(cluster: LocalCluster) -> None:
    """Install the committed CRD once per session; server-side apply makes it idempotent."""
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager=modeldeploy", "-f", str(CRD)
    )
    cluster.wait_established("crd/modeldeployments.modeldeploy.io")
    # The first requests after Established can still meet a cold discovery cache.
    eventually(
        "modeldeployments to be served",
        lambda: cluster.kubectl("get", "modeldeployments", "-A", check=False).returncode == 0,
    )


@pytest.fixture(scope="module")
def shared_namespace(cluster: LocalCluster, crd: None) -> Iterator[str]:
    """One namespace for the many dry runs and refusals, which leave nothing behind."""
    name = f"t-api-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def get(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    result = cluster.kubectl("-n", namespace, "get", "modeldeployment", name, "-o", "json")
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_passes_server_side_dry_run(cluster: LocalCluster, shared_namespace: str, path: Path) -> None:
    result = cluster.kubectl(
        "-n", shared_namespace, "apply", "--server-side", "--dry-run=server", "-f", str(path), check=False
    )
    assert result.returncode == 0, output(result)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_manifest_is_refused_at_admission_naming_the_field(
    cluster: LocalCluster, shared_namespace: str, path: Path
) -> None:
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    result = cluster.kubectl("-n", shared_namespace, "apply", "-f", str(path), check=False)
    assert result.returncode != 0, f"{path.name} was accepted"
    assert expected in output(result)


def test_locked_spec_refuses_changes_until_unlocked(cluster: LocalCluster, namespace: str, crd: None) -> None:
    manifest = load(ROOT / "examples" / "minimal.yaml")
    manifest["spec"]["locked"] = True
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=yaml.safe_dump(manifest))

    manifest["spec"]["model"]["version"] = "1.1.0"
    refused = cluster.kubectl(
        "-n", namespace, "apply", "-f", "-", input=yaml.safe_dump(manifest), check=False
    )
    assert refused.returncode != 0
    assert LOCKED_MESSAGE in output(refused)
    patched = cluster.kubectl(
        "-n", namespace, "patch", "mdep", "iris", "--type=merge",
        "-p", '{"spec":{"model":{"version":"1.1.0"}}}', check=False,
    )  # fmt: skip
    assert patched.returncode != 0
    assert LOCKED_MESSAGE in output(patched)
    assert get(cluster, namespace, "iris")["spec"]["model"]["version"] == "1.0.0"

    cluster.kubectl(
        "-n", namespace, "patch", "mdep", "iris", "--type=merge", "-p", '{"spec":{"locked":false}}'
    )
    manifest["spec"]["locked"] = False
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=yaml.safe_dump(manifest))
    assert get(cluster, namespace, "iris")["spec"]["model"]["version"] == "1.1.0"


def test_kubectl_explain_documents_canary_steps(cluster: LocalCluster, crd: None) -> None:
    def explained() -> bool:
        result = cluster.kubectl("explain", "modeldeployment.spec.strategy.canary.steps", check=False)
        return result.returncode == 0 and "Percent of live traffic sent to the candidate" in result.stdout

    eventually("kubectl explain to know the CRD's schema", explained)
    text = cluster.kubectl("explain", "modeldeployment.spec.strategy.canary.steps").stdout
    assert "weights must increase strictly" in text
    assert "pause" in text and "kubectl modeldeploy promote" in text


def test_kubectl_get_shows_printer_columns_of_a_populated_status(
    cluster: LocalCluster, namespace: str, crd: None
) -> None:
    cluster.kubectl("-n", namespace, "apply", "-f", str(ROOT / "examples" / "canary-gateway-api.yaml"))
    status = {
        "status": {
            "observedGeneration": 1,
            "phase": "Progressing",
            "message": "canary step 2/3 at 25%, error-rate 0.003 <= 0.01",
            "router": "gatewayAPI",
            "stable": {"revision": "fraud-3-1-0-5d8c1", "version": "3.1.0"},
            "candidate": {
                "revision": "fraud-3-2-0-7c9f2",
                "version": "3.2.0",
                "stage": "Canary",
                "step": 1,
                "weight": 25,
            },
        }
    }
    cluster.kubectl(
        "-n",
        namespace,
        "patch",
        "mdep",
        "fraud",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )

    table = cluster.kubectl("-n", namespace, "get", "mdep").stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "STABLE", "CANDIDATE", "STAGE", "WEIGHT", "AGE"]
    assert table[1].split()[:6] == ["fraud", "Progressing", "3.1.0", "3.2.0", "Canary", "25"]

    wide = cluster.kubectl("-n", namespace, "get", "md", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == [
        "NAME",
        "PHASE",
        "STABLE",
        "CANDIDATE",
        "STAGE",
        "WEIGHT",
        "AGE",
        "ROUTER",
        "MESSAGE",
    ]
    assert "gatewayAPI" in wide[1] and "canary step 2/3 at 25%" in wide[1]

    by_category = cluster.kubectl("-n", namespace, "get", "modeldeploy").stdout
    assert "fraud" in by_category


def test_manual_actions_are_validated_in_the_status_subresource(
    cluster: LocalCluster, namespace: str, crd: None
) -> None:
    cluster.kubectl("-n", namespace, "apply", "-f", str(ROOT / "examples" / "minimal.yaml"))

    def patch_action(action: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        body = json.dumps({"status": {"action": action}})
        return cluster.kubectl(
            "-n",
            namespace,
            "patch",
            "mdep",
            "iris",
            "--subresource=status",
            "--type=merge",
            "-p",
            body,
            check=False,
        )

    misspelt = patch_action({"type": "Promte"})
    assert misspelt.returncode != 0
    assert 'status.action.type: Unsupported value: "Promte"' in output(misspelt)
    misplaced = patch_action({"type": "Promote", "toRevision": "iris-0-9-0-aaaaa"})
    assert misplaced.returncode != 0
    assert "status.action.toRevision is only used with type Undo" in output(misplaced)

    accepted = patch_action(
        {"type": "Undo", "toRevision": "iris-0-9-0-aaaaa", "requestedAt": "2026-11-22T10:00:00Z"}
    )
    assert accepted.returncode == 0, output(accepted)
    stored = get(cluster, namespace, "iris")
    assert stored["status"]["action"]["type"] == "Undo"
    assert stored["metadata"]["generation"] == 1  # status writes never bump the spec's generation


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_applying_an_example_twice_changes_nothing(
    cluster: LocalCluster, namespace: str, crd: None, path: Path
) -> None:
    manifest = load(path)
    name = manifest["metadata"]["name"]
    cluster.kubectl("-n", namespace, "apply", "-f", str(path))
    first = get(cluster, namespace, name)

    again = cluster.kubectl("-n", namespace, "apply", "-f", str(path))
    assert "unchanged" in again.stdout
    cluster.kubectl(
        "-n",
        namespace,
        "apply",
        "--server-side",
        "--field-manager=gitops",
        "--force-conflicts",
        "-f",
        str(path),
    )
    cluster.kubectl(
        "-n",
        namespace,
        "apply",
        "--server-side",
        "--field-manager=gitops",
        "--force-conflicts",
        "-f",
        str(path),
    )

    last = get(cluster, namespace, name)
    assert first["metadata"]["generation"] == last["metadata"]["generation"] == 1
    assert last["spec"] == manifest["spec"], (
        "the API server must store the spec exactly as written (no defaults)"
    )
