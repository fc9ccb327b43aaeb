"""metrics-server beside the real node: the resource metrics API (metrics.k8s.io) an HPA reads.

It runs as a host process, like the rest of the control plane, listening on the
real node's bridge address (the API server must reach it, and an Endpoints
address may not be loopback). It is registered as the APIService
``v1beta1.metrics.k8s.io``, behind a selector-less Service whose endpoint is that
address; the API server proxies to it directly (``--enable-aggregator-routing``)
with its front-proxy client certificate.

It scrapes the real node's kubelet only: ``--node-selector`` keeps it to the node
labelled ``modeldeploy.io/node=real``, so the kwok nodes' fake addresses are never
dialled. The kubelet's serving certificate is checked against the cluster CA.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from modeldeploy_dev.node import BRIDGE_IP, NODE_LABEL
from modeldeploy_dev.processes import ProcessTable, wait_until

NAMESPACE = "kube-system"
SERVICE = "metrics-server"
API_SERVICE = "v1beta1.metrics.k8s.io"


def objects(port: int) -> list[dict[str, Any]]:
    """The Service, its EndpointSlice and the APIService that route metrics.k8s.io to the process."""
    meta = {"name": SERVICE, "namespace": NAMESPACE}
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port, "protocol": "TCP"}]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {**meta, "labels": {"kubernetes.io/service-name": SERVICE}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [BRIDGE_IP], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        },
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": meta,
            "subsets": [
                {
                    "addresses": [{"ip": BRIDGE_IP}],
                    "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
                }
            ],
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": API_SERVICE},
            "spec": {
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "service": {"name": SERVICE, "namespace": NAMESPACE, "port": 443},
                # Its serving certificate is self-signed at start; the API server reaches it on
                # the bridge address only.
                "insecureSkipTLSVerify": True,
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]


def start_metrics_server(
    table: ProcessTable,
    binary: Path,
    directory: Path,
    kubeconfig: Path,
    ca_cert: Path,
    port: int,
    kubectl: Callable[..., Any],
) -> None:
    """Start metrics-server and register it; return once the API answers for the real node."""
    process = table.start(
        "metrics-server",
        [
            str(binary),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--bind-address={BRIDGE_IP}",
            f"--secure-port={port}",
            f"--cert-dir={directory / 'metrics-server-certs'}",
            f"--node-selector={NODE_LABEL[0]}={NODE_LABEL[1]}",
            "--kubelet-preferred-address-types=InternalIP",
            "--kubelet-use-node-status-port",
            f"--kubelet-certificate-authority={ca_cert}",
            "--metric-resolution=15s",
            "--kubelet-request-timeout=10s",
        ],
    )
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump_all(objects(port)))
    wait_until(
        "metrics.k8s.io serving the real node",
        lambda: (
            kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", check=False).returncode == 0
            and '"name"' in kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", check=False).stdout
        ),
        180,
        process.log,
    )
