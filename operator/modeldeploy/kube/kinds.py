"""The kinds the operator reads and writes, and where each lives in the REST API."""

from __future__ import annotations

from modeldeploy.api import GROUP, PLURAL, VERSION
from modeldeploy.kube.client import Kind

MODEL_DEPLOYMENT = Kind(f"{GROUP}/{VERSION}", "ModelDeployment", PLURAL)
DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
REPLICA_SET = Kind("apps/v1", "ReplicaSet", "replicasets")
SERVICE = Kind("v1", "Service", "services")
CONFIG_MAP = Kind("v1", "ConfigMap", "configmaps")
SECRET = Kind("v1", "Secret", "secrets")
EVENT = Kind("v1", "Event", "events")
JOB = Kind("batch/v1", "Job", "jobs")
HORIZONTAL_POD_AUTOSCALER = Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers")
HTTPROUTE = Kind("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes")
VIRTUALSERVICE = Kind("networking.istio.io/v1", "VirtualService", "virtualservices")

CLUSTER_KOPF_PEERING = Kind("kopf.dev/v1", "ClusterKopfPeering", "clusterkopfpeerings", namespaced=False)
KOPF_PEERING = Kind("kopf.dev/v1", "KopfPeering", "kopfpeerings")

BY_KIND: dict[str, Kind] = {
    kind.kind: kind
    for kind in (
        MODEL_DEPLOYMENT,
        DEPLOYMENT,
        REPLICA_SET,
        SERVICE,
        CONFIG_MAP,
        SECRET,
        EVENT,
        JOB,
        HORIZONTAL_POD_AUTOSCALER,
        HTTPROUTE,
        VIRTUALSERVICE,
    )
}

CHILD_KINDS = (DEPLOYMENT, HORIZONTAL_POD_AUTOSCALER, SERVICE, CONFIG_MAP, JOB, HTTPROUTE, VIRTUALSERVICE)
"""Kinds the operator creates per ModelDeployment and watches (label app.kubernetes.io/managed-by)."""

READ_KINDS = (REPLICA_SET,)
"""Kinds the operator only reads: its Deployments' ReplicaSets (the pod template's labels, with
app.kubernetes.io/managed-by), for readiness sooner than the Deployment's own status says it."""
