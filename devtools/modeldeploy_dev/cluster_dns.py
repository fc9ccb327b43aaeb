"""The real node's cluster DNS: CoreDNS answering ``cluster.local`` from the API server.

Pods reach Services by name (``<service>.<namespace>.svc``), as in any cluster:
the operator's warm-up requests, for one, go to
``http://{service}.{namespace}.svc:{port}``. CoreDNS (built from its Go module
with only the plugins used here, ``tools/go/coredns``) runs as a host process
beside the kubelet and listens on the node's bridge address, port 53, UDP and
TCP, and nowhere else; its health and readiness endpoints are on 127.0.0.1. The
kubelet's ``clusterDNS`` names that address, so every ``ClusterFirst`` pod's
resolv.conf points there.

It serves only the cluster's zones (``cluster.local`` and the reverse zones of
the Service and pod addresses it knows) and forwards nothing: a name outside
them is refused, so no lookup leaves the machine. It reads the API server as
user ``modeldeploy-coredns``, allowed only to list and watch Services,
EndpointSlices and Namespaces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DOMAIN = "cluster.local"
PORT = 53
USER = "modeldeploy-coredns"
# Names answered from the API server; any other name is refused (no forward plugin is built in).
ZONES = (DOMAIN, "in-addr.arpa", "ip6.arpa")
TTL_SECONDS = 5

RBAC: list[dict[str, Any]] = [
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "modeldeploy-dev:coredns"},
        "rules": [
            {"apiGroups": [""], "resources": ["services", "namespaces"], "verbs": ["list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
        ],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "modeldeploy-dev:coredns"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "modeldeploy-dev:coredns",
        },
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
    },
]


def corefile(address: str, kubeconfig: Path, health_port: int, ready_port: int) -> str:
    """CoreDNS's configuration: the cluster's zones on ``address``:53, answered by the kubernetes plugin."""
    zones = " ".join(ZONES)
    return "\n".join(
        [
            f"{' '.join(f'{zone}:{PORT}' for zone in ZONES)} {{",
            f"    bind {address}",
            "    errors",
            f"    health 127.0.0.1:{health_port}",
            f"    ready 127.0.0.1:{ready_port}",
            f"    kubernetes {zones} {{",
            f"        kubeconfig {kubeconfig}",
            f"        ttl {TTL_SECONDS}",
            "    }",
            f"    cache {TTL_SECONDS}",
            "}",
            "",
        ]
    )
