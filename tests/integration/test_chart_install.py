"""`helm install` of the chart into a real cluster: the operator's pod becomes Ready, and its
ServiceAccount can do what the operator needs and nothing the tests name as out of bounds.

Each test installs its own release (a random name, so the release-prefixed
ClusterRoles never clash) into its fresh namespace and uninstalls it. The
ModelDeployment and kopf peering CRDs come from the chart's crds/ (Helm skips
them when an earlier test already installed them).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetest import Release, apply, example, wait_phase
from modeldeploy.providers import OperatorConfig
from modeldeploy_dev.binaries import REPO_ROOT
from modeldeploy_dev.cluster import LocalCluster
from modeldeploy_dev.images import operator_image
from modeldeploy_dev.node import NODE_NAME

CHART = Path(__file__).resolve().parents[2] / "charts" / "modeldeploy"


@pytest.fixture
def release(cluster: LocalCluster, namespace: str) -> Iterator[Release]:
    release = Release(cluster, namespace)
    yield release
    release.uninstall()


@pytest.fixture
def other_namespace(cluster: LocalCluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def get(cluster: LocalCluster, *args: str) -> dict[str, Any]:
    document = json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)
    assert isinstance(document, dict)
    return document


@pytest.mark.timeout(900)  # may start the real node's cluster and build the image cold
def test_the_operator_image_runs_as_a_pod_on_the_real_node_and_reconciles(
    real_cluster: LocalCluster, real_namespace: str, operator_pod: Release
) -> None:
    """What a user does: `helm install` the chart with the operator image (built here from the
    project's Dockerfile); the pod runs on the real node, non-root on a read-only root
    filesystem, passes its probes and reconciles a ModelDeployment with its ServiceAccount token.

    The release is the session's (the `operator_pod` fixture installs it): a second release
    watching every namespace beside it would be a second operator acting on the same objects."""
    image = operator_image()
    [pod] = get(
        real_cluster,
        "-n",
        operator_pod.namespace,
        "pods",
        "-l",
        f"app.kubernetes.io/instance={operator_pod.name}",
    )["items"]
    assert pod["spec"]["nodeName"] == NODE_NAME
    [status] = pod["status"]["containerStatuses"]
    assert status["ready"] is True
    assert status["restartCount"] == 0
    assert status["image"].endswith(image.reference)
    container = pod["spec"]["containers"][0]
    assert {"livenessProbe", "readinessProbe"} <= set(container)

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return real_cluster.kubectl(
            "-n", operator_pod.namespace, "exec", pod["metadata"]["name"], "--", *command, check=False
        )

    assert run("id", "-u").stdout.strip() == "65532"
    readonly = run("touch", "/written")
    assert readonly.returncode != 0 and "Read-only file system" in readonly.stderr
    # The pod runs this checkout's operator code (the image is rebuilt when it changes).
    code = (
        "import hashlib, modeldeploy.handlers as h;"
        "print(hashlib.sha256(open(h.__file__, 'rb').read()).hexdigest())"
    )
    expected = hashlib.sha256(
        (REPO_ROOT / "operator" / "modeldeploy" / "handlers.py").read_bytes()
    ).hexdigest()
    assert run("python", "-c", code).stdout.strip() == expected
    token_dir = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert run("cat", f"{token_dir}/namespace").stdout == operator_pod.namespace

    # It reconciles through the API server it reaches from the pod (the `kubernetes` Service).
    apply(real_cluster, real_namespace, example("minimal"))
    status_ = wait_phase(real_cluster, real_namespace, "iris", "Stable", timeout=120)
    assert status_["observedGeneration"] == 1
    logs = real_cluster.kubectl("-n", operator_pod.namespace, "logs", pod["metadata"]["name"]).stdout
    assert "iris" in logs


def test_install_runs_the_operator_pod_ready_on_a_kwok_node(cluster: LocalCluster, release: Release) -> None:
    release.install()

    crd = get(cluster, "crd", "modeldeployments.modeldeploy.io")
    assert any(c["type"] == "Established" and c["status"] == "True" for c in crd["status"]["conditions"])
    deployment = get(cluster, "-n", release.namespace, "deployment", release.fullname)
    assert deployment["status"]["readyReplicas"] == 1
    [pod] = get(cluster, "-n", release.namespace, "pods", "-l", f"app.kubernetes.io/instance={release.name}")[
        "items"
    ]
    assert next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")["status"] == "True"
    node = get(cluster, "node", pod["spec"]["nodeName"])
    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert pod["spec"]["serviceAccountName"] == release.fullname
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


CLUSTER_WIDE = [
    # (allowed, verb, resource, where)
    (True, "list", "modeldeployments.modeldeploy.io", "--all-namespaces"),
    (True, "watch", "modeldeployments.modeldeploy.io", "--all-namespaces"),
    (True, "patch", "modeldeployments.modeldeploy.io", "--subresource=status"),
    (True, "update", "modeldeployments.modeldeploy.io", "--subresource=finalizers"),
    (True, "create", "deployments.apps", ""),
    (True, "watch", "replicasets.apps", "--all-namespaces"),
    (False, "patch", "replicasets.apps", ""),
    (True, "delete", "services", ""),
    (True, "create", "httproutes.gateway.networking.k8s.io", ""),
    (True, "patch", "virtualservices.networking.istio.io", ""),
    (True, "create", "jobs.batch", ""),
    (True, "create", "configmaps", ""),
    (True, "create", "events", ""),
    (True, "watch", "customresourcedefinitions.apiextensions.k8s.io", ""),
    (False, "get", "secrets", ""),
    (False, "get", "secrets", "--all-namespaces"),
    (False, "list", "secrets", "--all-namespaces"),
    (False, "watch", "secrets", "--all-namespaces"),
    (False, "list", "secrets", ""),
    (False, "delete", "nodes", ""),
    (False, "create", "clusterroles.rbac.authorization.k8s.io", ""),
    (False, "create", "rolebindings.rbac.authorization.k8s.io", ""),
    (False, "patch", "pods", ""),
    (False, "create", "pods/exec", ""),
    (False, "create", "modeldeployments.modeldeploy.io", ""),
    (False, "delete", "modeldeployments.modeldeploy.io", ""),
    (False, "update", "jobs.batch", ""),
    (False, "patch", "customresourcedefinitions.apiextensions.k8s.io", ""),
    (False, "create", "serviceaccounts/token", ""),
]


def test_the_service_account_can_do_what_the_operator_needs_and_no_more(
    cluster: LocalCluster, release: Release
) -> None:
    release.install()
    answers = {
        (verb, resource, where): release.can(
            verb, resource, *(["-n", release.namespace] if not where else [where])
        )
        for _, verb, resource, where in CLUSTER_WIDE
    }
    expected = {(verb, resource, where): allowed for allowed, verb, resource, where in CLUSTER_WIDE}
    assert answers == expected


def test_namespaced_mode_confines_the_operator_to_its_namespaces(
    cluster: LocalCluster, release: Release, other_namespace: str
) -> None:
    release.install(f"watchNamespaces={{{release.namespace}}}", "peering.enabled=true")
    here, there = ["-n", release.namespace], ["-n", other_namespace]

    assert release.can("create", "deployments.apps", *here)
    assert release.can("list", "modeldeployments.modeldeploy.io", *here)
    assert release.can("patch", "modeldeployments.modeldeploy.io", "--subresource=status", *here)
    assert release.can("patch", "kopfpeerings.kopf.dev", *here)
    assert release.can("list", "customresourcedefinitions.apiextensions.k8s.io")
    assert release.can("watch", "namespaces")

    assert not release.can("create", "deployments.apps", *there)
    assert not release.can("list", "modeldeployments.modeldeploy.io", *there)
    assert not release.can("list", "modeldeployments.modeldeploy.io", "--all-namespaces")
    assert not release.can("get", "secrets", *there)
    assert not release.can("patch", "clusterkopfpeerings.kopf.dev")

    peering = get(cluster, "-n", release.namespace, "kopfpeerings.kopf.dev", release.fullname)
    assert peering["metadata"]["labels"]["app.kubernetes.io/instance"] == release.name
    [pod] = get(cluster, "-n", release.namespace, "pods", "-l", f"app.kubernetes.io/instance={release.name}")[
        "items"
    ]
    args = pod["spec"]["containers"][0]["args"]
    assert f"--namespace={release.namespace}" in args and f"--peering={release.fullname}" in args


def test_provider_secrets_are_readable_by_name_in_the_release_namespace_only(
    cluster: LocalCluster, release: Release, other_namespace: str
) -> None:
    release.install(
        "metricProviders[0].name=mimir",
        "metricProviders[0].address=http://mimir.monitoring:8080",
        "metricProviders[0].bearerTokenSecretRef.name=mimir-token",
        "metricProviders[0].bearerTokenSecretRef.key=token",
    )
    assert release.can("get", "secrets/mimir-token", "-n", release.namespace)
    assert not release.can("get", "secrets/other-token", "-n", release.namespace)
    assert not release.can("get", "secrets/mimir-token", "-n", other_namespace)
    assert not release.can("list", "secrets", "-n", release.namespace)
    config = get(cluster, "-n", release.namespace, "configmap", f"{release.fullname}-config")
    parsed = OperatorConfig.model_validate(yaml.safe_load(config["data"]["config.yaml"]))
    provider = parsed.provider(None, "any-namespace") or parsed.provider("mimir", "any-namespace")
    assert provider is not None and provider.bearer_token_secret_ref is not None
    assert provider.bearer_token_secret_ref.name == "mimir-token"


def test_uninstall_removes_the_cluster_roles_but_keeps_the_crd(
    cluster: LocalCluster, release: Release
) -> None:
    release.install()
    release.uninstall()
    release.installed = False
    roles = cluster.kubectl("get", "clusterroles", "-o", "name").stdout.split()
    assert not [r for r in roles if r.startswith(f"clusterrole.rbac.authorization.k8s.io/{release.name}-")]
    assert cluster.kubectl("get", "crd", "modeldeployments.modeldeploy.io", check=False).returncode == 0
