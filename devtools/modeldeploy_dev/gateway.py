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
``backendRefs`` become a weighted round robin over the Services, and
``RequestMirror`` filters become Traefik's mirroring service
(``tools/go/traefik/request-mirror.patch``): the copy's answer is discarded. It
reports ``Accepted`` and ``ResolvedRefs`` in the route's status.

No request is lost when a route's Service loses every pod and the operator re-points it
(a fallback failover), by two settings of Traefik's static configuration, as a user would
configure their gateway (README "Traffic safety"):

- **Native load balancing** (``nativeLBByDefault``): each backendRef is its Service's
  ClusterIP, and kube-proxy picks the pod, with a new connection per request
  (``maxIdleConnsPerHost=-1``), so each request goes where the Service points *now*.
  Traefik's own balancing over EndpointSlices cannot be retried into the fallback: a
  Service with no Ready endpoint becomes a balancer with no server, which answers
  ``503 no available server`` before the Retry middleware is armed, and a request keeps the
  handler tree of the configuration it arrived under, so no retry sees the operator's move.
- **Retry** on the listener's entrypoint (``retry@file``, from a file provider): a request the
  Service could not take (connection refused while it has no endpoint, a dial that timed
  out to a pod that just went) is sent again with backoff until kube-proxy has the
  fallback's pods behind the same ClusterIP. Only a request no byte of which reached a
  backend is retried, so a POST's body is never sent twice.
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

DYNAMIC_CONFIG_DIR = "/etc/traefik/dynamic"
RETRY_MIDDLEWARE = "retry"
RETRY = {"attempts": 16, "initialInterval": "300ms"}
"""Traefik's Retry middleware on every route of the listener. The waits between attempts grow
from 300 ms to at most 600 ms (each ±50%), 15 of them: about 3.4 s at the least, about 7 s on
average, over a Service's gap between losing its last pod and kube-proxy applying the
fallback's (the operator's reaction, and kube-proxy's 1 s minimum between syncs), inside a
client's 10 s timeout. 12 attempts (2.5 s at the least) once lost 1 request of 1,800 in a
failover on a machine loaded by two test sessions at once: the gap outlasted the retries."""

GATEWAY_API_GROUP = "gateway.networking.k8s.io"


def dynamic_config() -> dict[str, Any]:
    """The file provider's dynamic configuration: the Retry middleware the listener applies."""
    return {"http": {"middlewares": {RETRY_MIDDLEWARE: {"retry": RETRY}}}}


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
        # Apply a new configuration at most 100 ms after the last (the default is 2 s): a
        # route the operator changes takes effect at once.
        "--providers.providersThrottleDuration=100ms",
        # Each backendRef goes to its Service's ClusterIP, and kube-proxy picks the pod: a
        # Service the operator re-points at the fallback's pods serves them as soon as
        # kube-proxy has them, under the same address (see RETRY).
        "--providers.kubernetesgateway.nativeLBByDefault=true",
        # The Retry middleware on every router of the listener (static configuration: no
        # route needs a Traefik-specific filter), defined in the file provider's ConfigMap.
        f"--providers.file.directory={DYNAMIC_CONFIG_DIR}",
        "--providers.file.watch=false",
        f"--entryPoints.{LISTENER}.http.middlewares={RETRY_MIDDLEWARE}@file",
        # The Gateway's status address: its ClusterIP Service.
        f"--providers.kubernetesgateway.statusaddress.service.name={NAME}",
        f"--providers.kubernetesgateway.statusaddress.service.namespace={NAMESPACE}",
        # No call home: pods here have no route out, and should not try.
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        "--log.level=INFO",
        # A new connection per request: a kept-alive connection to a ClusterIP stays with the
        # pod kube-proxy chose when it opened, whatever the Service selects since; and a
        # request sent on one just as the server (uvicorn: 5 s idle) closes it is not
        # retried (a POST, its bytes sent): 502.
        "--serversTransport.maxIdleConnsPerHost=-1",
        # A pod that just went may leave its address unanswered (no ARP reply) until
        # kube-proxy drops it: give up on the connection after 1 s (the default is 30 s),
        # and the Retry middleware sends the request again.
        "--serversTransport.forwardingTimeouts.dialTimeout=1s",
        # Requests the gateway answered with a 5xx, each with the backend URL it chose
        # (a Service's ClusterIP): `kubectl logs` says which Service failed a request.
        "--accesslog=true",
        "--accesslog.filters.statuscodes=500-599",
    ]
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": NAME, "namespace": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{NAME}-dynamic", "namespace": NAMESPACE},
            "data": {"retry.yaml": yaml.safe_dump(dynamic_config())},
        },
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
                                "volumeMounts": [
                                    {"name": "dynamic", "mountPath": DYNAMIC_CONFIG_DIR, "readOnly": True}
                                ],
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
                        "volumes": [{"name": "dynamic", "configMap": {"name": f"{NAME}-dynamic"}}],
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
