"""Test tiers and the shared control plane.

Tests under tests/unit are marked `unit` (pure, fast); tests under
tests/integration are marked `integration` and share ONE control plane per
session: the local one (etcd, kube-apiserver, controller-manager, scheduler,
kwok, Prometheus on 127.0.0.1) or, with `--use-existing-cluster` (or
MODELDEPLOY_USE_EXISTING_CLUSTER=1), whatever cluster $KUBECONFIG names.
Each test gets a fresh namespace.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hypothesis_profiles import load_default
from modeldeploy_dev.binaries import ensure_binaries
from modeldeploy_dev.cluster import LocalCluster
from modeldeploy_dev.modelserver import ModelServer
from modeldeploy_dev.operator import OperatorProcess
from modeldeploy_dev.processes import wait_until

TESTS = Path(__file__).resolve().parent

load_default()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--use-existing-cluster",
        action="store_true",
        default=os.environ.get("MODELDEPLOY_USE_EXISTING_CLUSTER") == "1",
        help="run the integration tier against the cluster $KUBECONFIG names instead of a local one",
    )


# Tests that start a cluster with the real node of their own (the demo does) run before any
# test takes the session's `real_cluster`: that fixture holds the machine's one real-node
# slot until the session ends, so a later one would wait for it in vain.
OWN_REAL_NODE_FIRST = ("integration/test_demo.py",)
# Tests that take the session's real-node cluster down and start it again run last: what the
# session installed there (the `operator_pod` release) is gone afterwards.
RESTARTS_REAL_NODE_LAST = (
    "test_real_node.py::test_down_leaves_no_process_mount_netns_chain_bridge_or_kernel_setting",
)


# `make integration` runs the tier as two pytest sessions side by side, one per session cluster:
# `-m "integration and real_node"` takes the tests that use the real-node cluster (or start a
# real node of their own), `-m "integration and not real_node"` the rest. Each session starts
# only its own cluster. The kwok tests wait on the control plane and the real-node tests on
# pods: each leaves most of the two cores idle alone.
def takes_real_node(item: pytest.Item, own_node: set[str]) -> bool:
    return str(item.fspath) in own_node or "real_cluster" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    own_node = {str(TESTS / path) for path in OWN_REAL_NODE_FIRST}
    for item in items:
        tier = Path(str(item.fspath)).relative_to(TESTS).parts[0]
        if tier in ("unit", "integration"):
            item.add_marker(getattr(pytest.mark, tier))
        if tier == "integration" and takes_real_node(item, own_node):
            item.add_marker(pytest.mark.real_node)

    def place(item: pytest.Item) -> int:
        if str(item.fspath) in own_node:
            return 0
        return 2 if item.nodeid.endswith(RESTARTS_REAL_NODE_LAST) else 1

    items.sort(key=place)  # stable: the rest keep their order


class ExistingCluster:
    """A cluster we did not start: KUBECONFIG's, with PROMETHEUS_URL if the tests need one."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.prometheus_url = os.environ.get("PROMETHEUS_URL", "")
        self.scrape_targets_dir: Path | None = None
        self.local = False
        self._kubectl = str(ensure_binaries()["kubectl"])

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self._kubectl, "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )


@pytest.fixture(scope="session")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    if request.config.getoption("--use-existing-cluster"):
        kubeconfig = os.environ.get("KUBECONFIG")
        if not kubeconfig:
            raise pytest.UsageError("--use-existing-cluster needs KUBECONFIG to name the cluster")
        yield ExistingCluster(Path(kubeconfig))  # type: ignore[misc]
        return
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), nodes=3, audit=True)
    local.local = True  # type: ignore[attr-defined]
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def real_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """A second local cluster with one real node (kubelet, containerd, CNI bridge, kube-proxy)
    beside two kwok nodes, for tests of real pods from real images.

    Only pods that tolerate the node's taint run there (modeldeploy_dev.node.POD_PLACEMENT).
    It needs root and `make node-deps`; only one real node runs on a machine at a time,
    so a second test session waits for the first one's node (MODELDEPLOY_REAL_NODE_WAIT).
    """
    os.environ.setdefault("MODELDEPLOY_REAL_NODE_WAIT", "3600")
    if request.config.getoption("--use-existing-cluster"):
        pytest.skip("runs the local cluster's real node; an existing cluster has nodes of its own")
    local = LocalCluster(tmp_path_factory.mktemp("real-cluster"), nodes=2, real_node=True)
    local.local = True  # type: ignore[attr-defined]
    local.start()
    try:
        yield local
    finally:
        local.stop()


def _fresh_namespace(cluster: LocalCluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.kubectl("create", "namespace", name)
    wait_until(
        f"default ServiceAccount in {name}",
        lambda: cluster.kubectl("-n", name, "get", "serviceaccount", "default", check=False).returncode == 0,
        30,
    )
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def namespace(cluster: LocalCluster) -> Iterator[str]:
    yield from _fresh_namespace(cluster)


@pytest.fixture
def real_namespace(real_cluster: LocalCluster) -> Iterator[str]:
    """A fresh namespace in real_cluster."""
    yield from _fresh_namespace(real_cluster)


@pytest.fixture
def prometheus(cluster: LocalCluster) -> str:
    """The URL of the Prometheus that scrapes tests' exporters."""
    if not getattr(cluster, "local", False):
        pytest.skip("needs the local Prometheus, which scrapes exporters on 127.0.0.1")
    return cluster.prometheus_url


@pytest.fixture(scope="session")
def crd(cluster: LocalCluster) -> None:
    """The ModelDeployment CRD, installed once per session (server-side apply is idempotent)."""
    crd_file = Path(__file__).resolve().parents[1] / "crds" / "modeldeployment.yaml"
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd_file))
    cluster.wait_established("crd/modeldeployments.modeldeploy.io")


@pytest.fixture(scope="session")
def model_server() -> Iterator[ModelServer]:
    """A stand-in model server on 127.0.0.1 that warm-up requests reach (latency and status settable)."""
    server = ModelServer()
    try:
        yield server
    finally:
        server.close()


OPERATOR_NAMESPACE = "modeldeploy-system"
CHART = Path(__file__).resolve().parents[1] / "charts" / "modeldeploy"
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def chart_identity(cluster: LocalCluster, directory: Path) -> tuple[Path, str]:
    """A kubeconfig for the chart's ServiceAccount, with exactly the chart's RBAC installed.

    The integration suite runs the operator under this identity, so every
    scenario also proves the chart grants enough, and the can-i tests in
    test_chart_install.py prove it grants no more.
    """
    helm = cluster.helm_path()
    rendered = subprocess.run(
        [
            *(helm, "template", "modeldeploy", str(CHART), "--namespace", OPERATOR_NAMESPACE),
            *("--set", "rbac.readSecrets=true"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    documents = [d for d in yaml.safe_load_all(rendered) if d and d.get("kind") in RBAC_KINDS]
    cluster.kubectl("create", "namespace", OPERATOR_NAMESPACE, check=False)
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))
    account = next(d["metadata"]["name"] for d in documents if d["kind"] == "ServiceAccount")
    token = cluster.kubectl(
        "-n", OPERATOR_NAMESPACE, "create", "token", account, "--duration=24h"
    ).stdout.strip()
    kubeconfig = directory / "operator-sa.kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "local",
                        "cluster": {
                            "server": cluster.apiserver_url,
                            "certificate-authority": str(cluster.directory / "pki" / "ca.crt"),
                        },
                    }
                ],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": "local", "context": {"cluster": "local", "user": account}}],
                "current-context": "local",
            }
        )
    )
    return kubeconfig, f"system:serviceaccount:{OPERATOR_NAMESPACE}:{account}"


@pytest.fixture(scope="session")
def operator(
    cluster: LocalCluster, crd: None, model_server: ModelServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator, running as its own process against the session's cluster (resync every 20 s).

    On the local cluster it runs as the Helm chart's ServiceAccount, with the
    chart's RBAC and nothing more. Warm-up requests go to ``model_server`` on
    127.0.0.1, never to a Service IP; analysis defaults to the local Prometheus.
    """
    directory = tmp_path_factory.mktemp("operator")
    if getattr(cluster, "local", False):
        kubeconfig, username = chart_identity(cluster, directory)
    else:
        kubeconfig, username = cluster.kubeconfig, ""
    # The suite's manifests name their Prometheus inline (spec.analysis.prometheus), which an
    # admin must allow; its bearer token Secret is then read in the tenant's namespace.
    args = ["--resync", "20", "--service-url-template", model_server.url, "--inline-providers"]
    if getattr(cluster, "prometheus_url", ""):
        args += ["--prometheus-url", cluster.prometheus_url]
    process = OperatorProcess(kubeconfig, directory / "operator.log", *args)
    process.username = username  # type: ignore[attr-defined]
    process.start()
    try:
        yield process
    finally:
        process.stop()
