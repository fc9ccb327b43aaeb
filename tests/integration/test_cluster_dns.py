"""The real node's cluster DNS (CoreDNS on the bridge IP): pods reach Services by name, as in
any cluster, and no other name is answered or sent anywhere.

The operator pod's warm-up requests go to ``http://{service}.{namespace}.svc:{port}``
(its default ``--service-url-template``): the warm-up test proves they resolve and land
on the candidate's MLServer pod, counted by MLServer's own metrics.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
import socket
import struct
import urllib.request
from typing import Any

import pytest
import yaml

from kubetest import Release, apply, event_reasons, items, md_status, mlserver_digits, wait_for
from modeldeploy_dev.cluster import SERVICE_CIDR, LocalCluster
from modeldeploy_dev.gateway import PARENT_REF
from modeldeploy_dev.images import debian_image, model_server_image
from modeldeploy_dev.node import BRIDGE_IP, NODE_NAME, POD_PLACEMENT, SUBNET

COLD_BUILD_TIMEOUT = 900
REFUSED = 5  # DNS RCODE
WARMUP_REQUESTS = 12

# Run in a pod: what its resolver answers for each name, and which name servers it was given.
RESOLVE_PY = """
import json, socket, sys
answers = {}
for name in sys.argv[1:]:
    try:
        answers[name] = sorted({info[4][0] for info in socket.getaddrinfo(name, 80, socket.AF_INET)})
    except socket.gaierror as error:
        answers[name] = "error: " + str(error)
servers = [line.split()[1] for line in open("/etc/resolv.conf") if line.startswith("nameserver")]
print(json.dumps({"answers": answers, "nameservers": servers}))
"""


def get(cluster: LocalCluster, *args: str) -> dict[str, Any]:
    document = json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)
    assert isinstance(document, dict)
    return document


def dns_query(name: str, tcp: bool = False) -> tuple[int, list[str]]:
    """One A query to the cluster DNS on the bridge IP: (rcode, addresses)."""
    ident = random.randrange(1 << 16)
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", 1, 1)
    if tcp:
        with socket.create_connection((BRIDGE_IP, 53), timeout=5) as conn:
            conn.sendall(struct.pack(">H", len(packet)) + packet)
            size = struct.unpack(">H", _read(conn, 2))[0]
            answer = _read(conn, size)
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as conn:
            conn.settimeout(5)
            conn.sendto(packet, (BRIDGE_IP, 53))
            answer = conn.recv(4096)
    got_id, flags, _, count = struct.unpack(">HHHH", answer[:8])
    assert got_id == ident
    offset = 12 + len(question) + 4
    addresses = []
    for _ in range(count):
        offset = _skip_name(answer, offset)
        kind, _, _, length = struct.unpack(">HHIH", answer[offset : offset + 10])
        offset += 10
        if kind == 1:
            addresses.append(socket.inet_ntoa(answer[offset : offset + length]))
        offset += length
    return flags & 0xF, addresses


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        assert chunk, "connection closed"
        data += chunk
    return data


def _skip_name(message: bytes, offset: int) -> int:
    while message[offset]:
        if message[offset] & 0xC0 == 0xC0:  # a compression pointer ends the name
            return offset + 2
        offset += message[offset] + 1
    return offset + 1


@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_a_pod_resolves_services_by_name_and_nothing_outside_the_cluster(
    real_cluster: LocalCluster, real_namespace: str
) -> None:
    image = debian_image()
    real_cluster.import_images(image)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "scores"},
        "spec": {"selector": {"app": "scores"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    real_cluster.kubectl("-n", real_namespace, "apply", "-f", "-", input=yaml.safe_dump(service))
    cluster_ip = get(real_cluster, "-n", real_namespace, "service", "scores")["spec"]["clusterIP"]
    assert ipaddress.ip_address(cluster_ip) in ipaddress.ip_network(SERVICE_CIDR)
    names = [
        "scores",  # through the pod's search domains
        f"scores.{real_namespace}.svc",  # the operator's default --service-url-template
        f"scores.{real_namespace}.svc.cluster.local",
        "kubernetes.default.svc.cluster.local",
        "example.com",
        "missing.default.svc.cluster.local",
    ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "resolver"},
        "spec": {
            **POD_PLACEMENT,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "resolver",
                    "image": image.reference,
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-c", RESOLVE_PY, *names],
                    "resources": {"limits": {"memory": "64Mi", "cpu": "200m"}},
                }
            ],
        },
    }
    real_cluster.kubectl("-n", real_namespace, "apply", "-f", "-", input=yaml.safe_dump(pod))
    wait_for(
        "the resolver pod to finish",
        lambda: (
            get(real_cluster, "-n", real_namespace, "pod", "resolver")["status"].get("phase")
            in ("Succeeded", "Failed")
        ),
        timeout=90,
    )
    finished = get(real_cluster, "-n", real_namespace, "pod", "resolver")
    assert finished["spec"]["nodeName"] == NODE_NAME
    logs = real_cluster.kubectl("-n", real_namespace, "logs", "resolver").stdout
    assert finished["status"]["phase"] == "Succeeded", logs
    report = json.loads(logs.strip().splitlines()[-1])

    # The pod's only name server is the cluster DNS on the node's bridge IP.
    assert report["nameservers"] == [BRIDGE_IP]
    answers = report["answers"]
    for name in names[:3]:
        assert answers[name] == [cluster_ip], (name, answers)
    assert answers["kubernetes.default.svc.cluster.local"] == ["10.96.0.1"], answers
    assert str(answers["example.com"]).startswith("error"), answers
    assert str(answers["missing.default.svc.cluster.local"]).startswith("error"), answers

    # Asked directly (UDP and TCP), the cluster DNS answers its own names and refuses any other:
    # it has nowhere to forward them to.
    for tcp in (False, True):
        assert dns_query(f"scores.{real_namespace}.svc.cluster.local", tcp) == (0, [cluster_ip])
        assert dns_query("example.com", tcp) == (REFUSED, [])


@pytest.mark.timeout(COLD_BUILD_TIMEOUT)
def test_the_operator_pods_warmup_reaches_the_candidate_through_its_service_name(
    real_cluster: LocalCluster, real_namespace: str, operator_pod: Release
) -> None:
    """The operator pod (the chart, its image) warms up an MLServer candidate at
    ``digits-candidate.<namespace>.svc`` and promotes it; MLServer counts every warm-up request."""
    server = model_server_image()
    real_cluster.import_images(server)
    from modeldeploy_dev.demo import models

    _, features, _, _ = models.split()
    payloads = {
        f"digit-{i}.json": json.dumps(
            {
                "inputs": [
                    {"name": "pixels", "shape": [1, 64], "datatype": "FP64", "data": [float(v) for v in row]}
                ]
            }
        )
        for i, row in enumerate(features[:3])
    }
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "digits-warmup"},
        "data": payloads,
    }
    real_cluster.kubectl("-n", real_namespace, "apply", "-f", "-", input=yaml.safe_dump(config_map))

    def manifest(version: str, strategy: dict[str, Any] | None = None) -> dict[str, Any]:
        # A warm-up needs a router that keeps users off the candidate: the node's gateway.
        traffic = {
            "router": "gatewayAPI",
            "gatewayAPI": {"parentRefs": [PARENT_REF], "hostnames": ["warmup.digits.test"]},
        }
        return mlserver_digits(
            server.reference, version, traffic=traffic, **({"strategy": strategy} if strategy else {})
        )

    def operator_log() -> str:
        log = real_cluster.kubectl(
            "-n",
            operator_pod.namespace,
            "logs",
            f"deployment/{operator_pod.fullname}",
            "--tail=40",
            check=False,
        )
        return log.stdout[-4000:] + log.stderr[-500:]

    apply(real_cluster, real_namespace, manifest("1.0.0"))
    try:
        first = wait_for(
            "digits 1.0.0 Stable",
            lambda: (s := md_status(real_cluster, real_namespace, "digits")).get("phase") == "Stable" and s,
            timeout=180,
        )
    except AssertionError as error:
        raise AssertionError(f"{error}\n--- operator ---\n{operator_log()}") from None
    warmup = {
        "path": "/v2/models/digits/infer",
        "requests": WARMUP_REQUESTS,
        "concurrency": 2,
        "payloadConfigMap": "digits-warmup",
        # The warm-up waits until kube-proxy routes the new Service; after that, every request
        # must land. A name that does not resolve fails the warm-up: a rollback.
        "maxErrorRate": 0,
    }
    apply(real_cluster, real_namespace, manifest("2.0.0", {"warmup": warmup}))
    first_revision = first["stable"]["revision"]

    def settled() -> dict[str, Any] | None:
        s = md_status(real_cluster, real_namespace, "digits")
        promoted = s.get("phase") == "Stable" and s["stable"]["revision"] != first_revision
        return s if promoted or s.get("phase") == "RolledBack" else None

    try:
        status = wait_for("digits 2.0.0 promoted or rolled back", settled, timeout=240)
    except AssertionError as error:
        raise AssertionError(f"{error}\n--- operator ---\n{operator_log()}") from None
    assert status["phase"] == "Stable", (status, operator_log())
    event_reasons(real_cluster, real_namespace, "WarmupPassed")
    events = [(e["reason"], e.get("message", "")) for e in items(real_cluster, real_namespace, "events")]
    passes = [message for reason, message in events if reason == "WarmupPassed"]
    assert passes, events
    passed = passes[-1]
    found = re.match(r"warm-up passed: (\d+) requests, (\d+) errors", passed)
    assert found, passed
    sent, errors = int(found[1]), int(found[2])
    assert (sent, errors) == (WARMUP_REQUESTS, 0), passed

    # The candidate (now stable) MLServer pod counted every warm-up request
    # itself: they went through digits-candidate.<namespace>.svc, resolved by the cluster DNS.
    revision = status["stable"]["revision"]
    [pod] = get(real_cluster, "-n", real_namespace, "pods", "-l", f"modeldeploy.io/revision={revision}")[
        "items"
    ]
    assert pod["spec"]["nodeName"] == NODE_NAME
    pod_ip = pod["status"]["podIP"]
    assert ipaddress.ip_address(pod_ip) in SUBNET
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://{pod_ip}:8082/metrics", timeout=5) as response:
        metrics = response.read().decode()
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith('model_infer_request_success_total{model="digits",')
    )
    assert counted == WARMUP_REQUESTS, (passed, metrics[-2000:])
