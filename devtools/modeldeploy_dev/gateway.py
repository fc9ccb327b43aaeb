"""The real node's Gateway API implementation: Traefik's Gateway provider as a pod.

``install_gateway`` (run by ``LocalCluster.start`` when the real node is on)
installs Traefik as a Deployment
on the real node (its image from ``images.gateway_image``), its ServiceAccount
with a ClusterRole that only reads what the provider watches and writes route and
gateway status, the GatewayClass ``modeldeploy`` and the Gateway
``modeldeploy-gateway/gateway`` with one HTTP listener open to routes from every
namespace. Clients reach it through the ClusterIP Service ``gateway`` (10.96/16,
kube-proxy), port 80.

Traefik reads every HTTPRoute whose parentRef is that Gateway: weighted
``backendRefs`` become a weighted round robin over the Services' ready endpoints
(read from EndpointSlices; no DNS is involved), and ``RequestMirror`` filters
become Traefik's mirroring service (``tools/go/traefik/request-mirror.patch``):
the copy's answer is discarded. It reports ``Accepted`` and ``ResolvedRefs`` in
the route's status.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml

from modeldeploy_dev.node import POD_PLACEMENT
from modeldeploy_dev.processes import wait_until

NAMESPACE = "modeldeploy-gateway"
NAME = "gateway"
GATEWAY_CLASS = "modeldeploy"
CONTROLLER_NAME = "traefik.io/gateway-controller"
LISTENER = "http"
LISTENER_PORT = 8000
SERVICE_PORT = 80
PARENT_REF = {"name": NAME, "namespace": NAMESPACE, "sectionName": LISTENER}
"""What a route names in parentRefs to be served by this gateway."""

GATEWAY_API_GROUP = "gateway.networking.k8s.io"


def manifests(image: str) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": "traefik", "app.kubernetes.io/instance": NAME}
    read = ["get", "list", "watch"]
    rules = [
        {"apiGroups": [""], "resources": ["services", "namespaces", "secrets", "configmaps"], "verbs": read},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
        {
            "apiGroups": [GATEWAY_API_GROUP],
            "resources": [
                "gatewayclasses",
                "gateways",
                "httproutes",
                "grpcroutes",
                "tlsroutes",
                "referencegrants",
                "backendtlspolicies",
            ],
            "verbs": read,
        },
        {
            "apiGroups": [GATEWAY_API_GROUP],
            "resources": [
                "gatewayclasses/status",
                "gateways/status",
                "httproutes/status",
                "grpcroutes/status",
                "tlsroutes/status",
                "backendtlspolicies/status",
            ],
            "verbs": ["update"],
        },
    ]
    args = [
        f"--entryPoints.{LISTENER}.address=:{LISTENER_PORT}",
        "--entryPoints.traefik.address=:9000",
        "--ping=true",
        "--ping.entryPoint=traefik",
        "--providers.kubernetesgateway=true",
        # Apply a new configuration at most 100 ms after the last (the default is 2 s): when
        # every pod of a stable revision goes at once, the emptied backend is applied at once
        # and the operator's move to the fallback must not wait out the throttle behind it.
        "--providers.providersThrottleDuration=100ms",
        # The Gateway's status address: its ClusterIP Service.
        f"--providers.kubernetesgateway.statusaddress.service.name={NAME}",
        f"--providers.kubernetesgateway.statusaddress.service.namespace={NAMESPACE}",
        # No call home: pods here have no route out, and should not try.
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        "--log.level=INFO",
        # MLServer (uvicorn) closes a kept-alive connection after 5 s idle. A gateway that keeps
        # it longer (Traefik's default: 90 s) may send a request on it just as the server closes
        # it, and a POST is not retried: 502. The gateway closes its idle connections first.
        "--serversTransport.forwardingTimeouts.idleConnTimeout=3s",
        # Requests the gateway answered with a 5xx, each with the backend URL it chose
        # (a pod IP): `kubectl logs` says which pod failed a request, and nothing else.
        "--accesslog=true",
        "--accesslog.filters.statuscodes=500-599",
    ]
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": NAME, "namespace": NAMESPACE}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "modeldeploy-gateway"},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "modeldeploy-gateway"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "modeldeploy-gateway",
            },
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}],
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        **POD_PLACEMENT,
                        "serviceAccountName": NAME,
                        "terminationGracePeriodSeconds": 5,
                        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532},
                        "containers": [
                            {
                                "name": "traefik",
                                "image": image,
                                "imagePullPolicy": "Never",
                                "args": args,
                                "ports": [
                                    {"name": LISTENER, "containerPort": LISTENER_PORT},
                                    {"name": "ping", "containerPort": 9000},
                                ],
                                "readinessProbe": {
                                    "httpGet": {"path": "/ping", "port": 9000},
                                    "periodSeconds": 2,
                                },
                                "livenessProbe": {
                                    "httpGet": {"path": "/ping", "port": 9000},
                                    "periodSeconds": 10,
                                    "failureThreshold": 3,
                                },
                                "resources": {
                                    "requests": {"cpu": "100m", "memory": "64Mi"},
                                    "limits": {"memory": "256Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "spec": {
                "selector": labels,
                "ports": [{"name": LISTENER, "port": SERVICE_PORT, "targetPort": LISTENER}],
            },
        },
        {
            "apiVersion": f"{GATEWAY_API_GROUP}/v1",
            "kind": "GatewayClass",
            "metadata": {"name": GATEWAY_CLASS},
            "spec": {"controllerName": CONTROLLER_NAME},
        },
        {
            "apiVersion": f"{GATEWAY_API_GROUP}/v1",
            "kind": "Gateway",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "spec": {
                "gatewayClassName": GATEWAY_CLASS,
                "listeners": [
                    {
                        "name": LISTENER,
                        "protocol": "HTTP",
                        "port": LISTENER_PORT,
                        "allowedRoutes": {"namespaces": {"from": "All"}},
                    }
                ],
            },
        },
    ]


def install_gateway(
    kubectl: Callable[..., Any], import_images: Callable[..., None], log: Callable[[str], None]
) -> str:
    """Install the gateway on the real node; returns its Service's ClusterIP once it is Programmed."""
    from modeldeploy_dev.images import gateway_image

    image = gateway_image(log=log)
    import_images(image, log=log)
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests(image.reference)))
    kubectl("-n", NAMESPACE, "rollout", "status", f"deployment/{NAME}", "--timeout=120s", timeout=150)

    def programmed() -> bool:
        gateway = json.loads(kubectl("-n", NAMESPACE, "get", "gateway", NAME, "-o", "json").stdout)
        conditions = gateway.get("status", {}).get("conditions", [])
        return any(c["type"] == "Programmed" and c["status"] == "True" for c in conditions)

    wait_until("the Gateway Programmed by Traefik", programmed, 60)
    service = json.loads(kubectl("-n", NAMESPACE, "get", "service", NAME, "-o", "json").stdout)
    return str(service["spec"]["clusterIP"])
