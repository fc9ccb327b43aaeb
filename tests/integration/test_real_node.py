"""The local cluster's real node: real pods from images built here, kept apart from the kwok
nodes, reachable only inside the node's bridge subnet and Service range, and a `down` that
leaves the host as it found it.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetest import Release, apply, mlserver_digits, wait_phase
from modeldeploy_dev.cluster import SERVICE_CIDR, LocalCluster
from modeldeploy_dev.images import debian_image, model_server_image
from modeldeploy_dev.node import BRIDGE_IP, NODE_NAME, POD_PLACEMENT, SUBNET, TAINT, node_leftovers
from modeldeploy_dev.processes import listening_addresses, pid_alive, wait_until

# The first use of the real node starts its cluster and may build images cold (minutes).
COLD_BUILD_TIMEOUT = 900


def get(cluster: LocalCluster, *args: str) -> dict[str, Any]:
    document = json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)
    assert isinstance(document, dict)
    return document


def fetch(url: str) -> tuple[int, bytes]:
    # Only addresses inside the node's bridge subnet or Service range are dialled here.
    host = ipaddress.ip_address(url.split("/")[2].split(":")[0])
    assert host in SUBNET or host in ipaddress.ip_network(SERVICE_CIDR), url
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return int(response.status), bytes(response.read())


@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_the_real_node_is_ready_tainted_and_labelled(real_cluster: LocalCluster) -> None:
    node = get(real_cluster, "node", NODE_NAME)
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert node["metadata"]["labels"]["modeldeploy.io/node"] == "real"
    assert TAINT in [{k: t[k] for k in ("key", "value", "effect")} for t in node["spec"].get("taints", [])]
    assert "kwok.x-k8s.io/node" not in node["metadata"].get("annotations", {})
    assert {"type": "InternalIP", "address": BRIDGE_IP} in node["status"]["addresses"]
    # The kubelet is a real one, not kwok's stand-in.
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.35.4"


@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_a_pod_from_a_local_image_serves_on_its_ip_and_through_a_service(
    real_cluster: LocalCluster, real_namespace: str
) -> None:
    image = debian_image()
    real_cluster.import_images(image)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            **POD_PLACEMENT,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "web",
                    "image": image.reference,
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-m", "http.server", "8080", "--directory", "/etc"],
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/hostname", "port": 8080}, "periodSeconds": 1},
                    "resources": {"limits": {"memory": "64Mi", "cpu": "200m"}},
                }
            ],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    real_cluster.kubectl("-n", real_namespace, "apply", "-f", "-", input=yaml.safe_dump_all([pod, service]))
    real_cluster.kubectl("-n", real_namespace, "wait", "--for=condition=Ready", "pod/web", "--timeout=90s")

    running = get(real_cluster, "-n", real_namespace, "pod", "web")
    assert running["spec"]["nodeName"] == NODE_NAME
    pod_ip = running["status"]["podIP"]
    assert ipaddress.ip_address(pod_ip) in SUBNET
    status, body = fetch(f"http://{pod_ip}:8080/hostname")
    assert status == 200
    assert body.strip() == b"web"  # the pod's own UTS namespace: its name

    cluster_ip = get(real_cluster, "-n", real_namespace, "service", "web")["spec"]["clusterIP"]
    wait_until("the Service through kube-proxy", lambda: fetch(f"http://{cluster_ip}/hostname")[0] == 200, 30)
    assert fetch(f"http://{cluster_ip}/hostname") == (200, b"web\n")

    # The memory limit is enforced by the node's (v1) cgroups.
    uid = running["metadata"]["uid"]
    limits = [
        int(path.read_text())
        for path in Path("/sys/fs/cgroup/memory/kubepods").rglob("memory.limit_in_bytes")
        if uid.replace("-", "_") in str(path) or uid in str(path)
    ]
    assert 64 * 1024 * 1024 in limits, limits


def test_workloads_that_do_not_ask_for_the_real_node_stay_on_kwok_nodes(
    real_cluster: LocalCluster, real_namespace: str
) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "scale"},
        "spec": {
            "replicas": 8,
            "selector": {"matchLabels": {"app": "scale"}},
            "template": {
                "metadata": {"labels": {"app": "scale"}},
                "spec": {"containers": [{"name": "c", "image": "example.invalid/never-pulled:1"}]},
            },
        },
    }
    real_cluster.kubectl("-n", real_namespace, "apply", "-f", "-", input=yaml.safe_dump(deployment))
    real_cluster.kubectl(
        "-n", real_namespace, "wait", "--for=condition=Available", "deployment/scale", "--timeout=60s"
    )
    pods = get(real_cluster, "-n", real_namespace, "pods", "-l", "app=scale")["items"]
    assert len(pods) == 8
    nodes = {pod["spec"]["nodeName"] for pod in pods}
    assert NODE_NAME not in nodes
    for name in nodes:
        assert get(real_cluster, "node", name)["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"


def test_the_kubelet_answers_only_authenticated_and_authorized_clients(
    real_cluster: LocalCluster, real_namespace: str
) -> None:
    """Webhook authentication and authorization against the API server: no anonymous access,
    a ServiceAccount without RBAC on nodes/proxy is refused, the cluster admin is let in."""
    port = get(real_cluster, "node", NODE_NAME)["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    url = f"https://{BRIDGE_IP}:{port}/pods"
    pki = real_cluster.directory / "pki"
    token = real_cluster.kubectl("-n", real_namespace, "create", "token", "default").stdout.strip()

    def status(cert: tuple[str, str] | None = None, bearer: str | None = None) -> int:
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        if cert:
            context.load_cert_chain(*cert)
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        try:
            with opener.open(urllib.request.Request(url, headers=headers), timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    assert status() == 401
    assert status(bearer=token) == 403
    assert status(cert=(str(pki / "admin.crt"), str(pki / "admin.key"))) == 200


def test_every_listener_is_on_loopback_or_the_bridge_ip(real_cluster: LocalCluster) -> None:
    table = real_cluster.table
    assert table is not None
    pids = {p.pid for p in table.processes}
    assert {"containerd", "kubelet", "kube-proxy", "coredns"} <= {p.name for p in table.processes}
    wait_until("listeners", lambda: bool(listening_addresses(pids)), 10)
    addresses = listening_addresses(pids)
    datagrams = listening_addresses(pids, "udp")
    assert {address for address, _ in addresses | datagrams} <= {"127.0.0.1", BRIDGE_IP}, (
        addresses,
        datagrams,
    )
    # The API server, the kubelet and the cluster DNS are where pods can reach them; nothing else is.
    on_bridge = {port for address, port in addresses if address == BRIDGE_IP}
    assert int(real_cluster.apiserver_url.rsplit(":", 1)[1]) in on_bridge
    [coredns] = [p.pid for p in table.processes if p.name == "coredns"]
    assert (BRIDGE_IP, 53) in listening_addresses({coredns}) & listening_addresses({coredns}, "udp")


@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_a_model_deployment_serves_v2_inference_from_mlserver_on_the_real_node(
    real_cluster: LocalCluster, real_namespace: str, operator_pod: Release
) -> None:
    """The operator pod (the chart, its image) rolls out a ModelDeployment whose pods run
    MLServer's scikit-learn runtime with the demo's digit classifier 2.0.0; they answer the
    V2 inference protocol on their pod IP and through the ModelDeployment's Service."""
    server = model_server_image()
    real_cluster.import_images(server)
    # The session's operator pod (the chart, its image): a second release watching every
    # namespace beside it would be a second operator competing for the same objects.
    manifest = mlserver_digits(server.reference)
    apply(real_cluster, real_namespace, manifest)
    status = wait_phase(real_cluster, real_namespace, "digits", "Stable", timeout=180)
    revision = status["stable"]["revision"]
    [pod] = get(real_cluster, "-n", real_namespace, "pods", "-l", f"modeldeploy.io/revision={revision}")[
        "items"
    ]
    assert pod["spec"]["nodeName"] == NODE_NAME
    assert ipaddress.ip_address(pod["status"]["podIP"]) in SUBNET

    rows, labels = _held_out_digits(20)
    request = {"inputs": [{"name": "pixels", "shape": [20, 64], "datatype": "FP64", "data": rows}]}
    cluster_ip = get(real_cluster, "-n", real_namespace, "service", "digits")["spec"]["clusterIP"]
    # kube-proxy programs the Service's endpoints a moment after the pod turns Ready; MLServer's
    # readiness path is not one of the inference requests its metrics count below.
    wait_until(
        "the Service through kube-proxy", lambda: fetch(f"http://{cluster_ip}/v2/health/ready")[0] == 200, 30
    )
    for url in (
        f"http://{pod['status']['podIP']}:8080/v2/models/digits/infer",
        f"http://{cluster_ip}/v2/models/digits/infer",
    ):
        status_code, body = post_json(url, request)
        assert status_code == 200, body
        answer = json.loads(body)
        assert (answer["model_name"], answer["model_version"]) == ("digits", "2.0.0")
        predictions = answer["outputs"][0]["data"]
        correct = sum(int(p) == label for p, label in zip(predictions, labels, strict=True))
        assert correct >= 17, (predictions, labels)  # 2.0.0 is right ~97% of the time

    # MLServer's own Prometheus metrics count both answers, by model and version.
    _, metrics = fetch(f"http://{pod['status']['podIP']}:8082/metrics")
    # (Its version label reads "None" for requests to the unversioned path.)
    counted = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.decode().splitlines()
        if line.startswith('model_infer_request_success_total{model="digits",')
    ]
    assert counted == [2.0], metrics.decode()[-2000:]

    # A pod that leaves keeps answering through its preStop sleep (runtime.drainDelay, 10s by
    # default), with the grace period to match: the kubelet runs the sleep action.
    assert pod["spec"]["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}
    assert pod["spec"]["terminationGracePeriodSeconds"] == 10  # the template's 5, raised to the sleep
    name = pod["metadata"]["name"]
    real_cluster.kubectl("-n", real_namespace, "delete", "pod", name, "--wait=false")
    leaving = get(real_cluster, "-n", real_namespace, "pod", name)
    assert leaving["metadata"].get("deletionTimestamp"), leaving["metadata"]
    status_code, body = post_json(f"http://{pod['status']['podIP']}:8080/v2/models/digits/infer", request)
    assert status_code == 200, body


def _held_out_digits(count: int) -> tuple[list[float], list[int]]:
    from modeldeploy_dev.demo import models

    _, features, _, labels = models.split()
    rows = [float(v) for row in features[:count] for v in row]
    return rows, [int(label) for label in labels[:count]]


def post_json(url: str, payload: Any) -> tuple[int, bytes]:
    host = ipaddress.ip_address(url.split("/")[2].split(":")[0])
    assert host in SUBNET or host in ipaddress.ip_network(SERVICE_CIDR), url
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with opener.open(request, timeout=10) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_down_leaves_no_process_mount_netns_chain_bridge_or_kernel_setting(
    real_cluster: LocalCluster,
) -> None:
    """`modeldeploy-dev down` of a cluster whose real node runs pods; then the cluster starts again."""
    state = real_cluster.directory
    host_state = json.loads((state / "node" / "host-state.json").read_text())
    table = real_cluster.table
    assert table is not None
    pids = [p.pid for p in table.processes]
    # Something is there to remove: a running pod (its netns, mounts, cgroups).
    assert node_leftovers(state)["mounts"]
    assert node_leftovers(state)["bridge"]

    cli = [sys.executable, "-m", "modeldeploy_dev.cli"]
    down = subprocess.run(
        [*cli, "down", "--state-dir", str(state)], capture_output=True, text=True, timeout=180
    )
    assert down.returncode == 0, down.stderr
    try:
        assert [pid for pid in pids if pid_alive(pid)] == []
        shims = [
            proc.name
            for proc in Path("/proc").iterdir()
            if proc.name.isdigit() and _mentions(proc, str(state)) and pid_alive(int(proc.name))
        ]
        assert shims == []
        assert node_leftovers(state) == {"mounts": [], "netns": [], "bridge": [], "chains": [], "cgroups": []}
        for name, value in host_state["sysctls"].items():
            assert Path("/proc/sys", *name.split(".")).read_text().strip() == value, name
    finally:
        real_cluster.table = None
        real_cluster.start()


def _mentions(proc: Path, text: str) -> bool:
    try:
        return text in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
