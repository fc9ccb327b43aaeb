"""Pure builders for the objects: a Deployment per revision, the Services, the fallback backend, retrain Jobs.

Each builder returns the complete object as the operator means it to be
(server-side applied with field manager ``modeldeploy``). ``runtime.podTemplate``
is merged *under* the typed runtime fields, which always win: users get an
escape hatch for tolerations, volumes and sidecars without being able to
silently override the model server the revision hash describes.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modeldeploy.api import (
    Autoscaling,
    FallbackMode,
    MetricResult,
    ModelDeploymentSpec,
    ModelSpec,
    RuntimeSpec,
    StableRevision,
    parse_duration,
)
from modeldeploy.plan.revisions import (
    ANNOTATION_SCALED_BY,
    ANNOTATION_SOURCE,
    LABEL_REVISION,
    SCALED_BY_AUTOSCALER,
    instance_labels,
    pod_labels,
    selector_for,
)
from modeldeploy.plan.security import restricted

NGINX_IMAGE = "nginxinc/nginx-unprivileged:1.27-alpine"
"""nginx as UID 101, listening on 8080: runs under Pod Security restricted."""
NGINX_PORT = 8080
RESPONSE_MOUNT = "/etc/modeldeploy-fallback"
CONTAINER = "model"
DEFAULT_DRAIN_DELAY = "10s"
"""How long a leaving model pod keeps serving before SIGTERM when ``runtime.drainDelay`` is unset."""
SHUTDOWN_SECONDS = 30
"""The server's own graceful shutdown after SIGTERM, on top of the drain, in terminationGracePeriodSeconds."""
PORT_NAME = "http"
SERVICE_PORT = 80


@dataclass(frozen=True)
class Owner:
    """The ModelDeployment that owns every child (for ownerReferences and names).

    Invariant: the Service names (``<name>``, ``<name>-candidate``,
    ``<name>-fallback``) are spelled here and nowhere else.
    """

    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": "modeldeploy.io/v1alpha1",
            "kind": "ModelDeployment",
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def metadata(
        self, name: str, component: str, extra_labels: dict[str, str] | None = None
    ) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": self.namespace,
            "labels": {**instance_labels(self.name, component), **(extra_labels or {})},
            "ownerReferences": [self.reference()],
        }

    @property
    def stable_service(self) -> str:
        return self.name

    @property
    def candidate_service(self) -> str:
        return candidate_service_name(self.name)

    @property
    def fallback_service(self) -> str:
        """The fallback's Service and, for modes Model and Response, its Deployment and ConfigMap."""
        return fallback_service_name(self.name)


def candidate_service_name(name: str) -> str:
    """``fraud-candidate``: the Service of the revision under test."""
    return f"{name}-candidate"


def fallback_service_name(name: str) -> str:
    """``fraud-fallback``: the Service (and Deployment) of the fallback backend."""
    return f"{name}-fallback"


def deep_merge(base: Any, override: Any) -> Any:
    """Override wins; dicts merge key by key; containers merge by name; other lists are replaced.

    Nothing is copied: the result shares what it keeps of both (the planner builds its objects
    afresh on each pass and never changes one once built; the spec's models are frozen).
    """
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list) and _named(base) and _named(override):
        by_name = {item["name"]: item for item in base}
        merged_list = [deep_merge(by_name.get(item["name"], {}), item) for item in override]
        merged_list += [item for item in base if item["name"] not in {o["name"] for o in override}]
        return merged_list
    return override


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(item, dict) and "name" in item for item in items)


def model_container(model: ModelSpec, runtime: RuntimeSpec) -> dict[str, Any]:
    env: list[dict[str, Any]] = [
        {"name": "MODEL_NAME", "value": model.name},
        {"name": "MODEL_VERSION", "value": model.version},
    ]
    if model.uri:
        env.append({"name": "MODEL_URI", "value": model.uri})
    env += [e.to_wire() for e in runtime.env]
    probe_action: dict[str, Any] = (
        {"httpGet": {"path": runtime.readiness_path, "port": PORT_NAME}}
        if runtime.readiness_path
        else {"tcpSocket": {"port": PORT_NAME}}
    )
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": runtime.image,
        "ports": [{"name": PORT_NAME, "containerPort": runtime.port, "protocol": "TCP"}],
        "env": env,
        "readinessProbe": {**probe_action, "periodSeconds": 5, "failureThreshold": 3},
    }
    drain = drain_seconds(runtime)
    if drain > 0:
        # the sleep action (no shell needed in the image): the pod leaves the Service's
        # endpoints at once, and keeps answering what the data plane still sends it meanwhile
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": drain}}}
    if runtime.args:
        container["args"] = list(runtime.args)
    if runtime.resources is not None:
        container["resources"] = runtime.resources.to_wire()
    return container


def drain_seconds(runtime: RuntimeSpec) -> int:
    """The preStop sleep of a model pod: ``runtime.drainDelay``, 10s by default, in whole seconds (up)."""
    delay = runtime.drain_delay if runtime.drain_delay is not None else DEFAULT_DRAIN_DELAY
    return math.ceil(parse_duration(delay))


def termination_grace_seconds(runtime: RuntimeSpec, pod_spec: Mapping[str, Any]) -> int:
    """The drain plus 30s for the server's own shutdown, or what ``podTemplate`` asks for, but never
    less than the drain: the preStop sleep has to fit in it."""
    asked = pod_spec.get("terminationGracePeriodSeconds")
    drain = drain_seconds(runtime)
    return max(asked, drain) if isinstance(asked, int) else drain + SHUTDOWN_SECONDS


def revision_deployment(
    owner: Owner,
    revision: str,
    source: dict[str, Any],
    model: ModelSpec,
    runtime: RuntimeSpec,
    replicas: int | None,
    progress_deadline_seconds: int,
) -> dict[str, Any]:
    """The Deployment of one revision; its pods carry the revision label only (no role).

    ``replicas`` None: the revision's HPA owns the count, so the field is left out
    (server-side apply then claims nothing there) and an annotation says so.
    """
    base = runtime.pod_template or {}
    labels = pod_labels(owner.name, revision)
    template = deep_merge(
        base,
        {
            "metadata": {"labels": labels},
            "spec": {"containers": [model_container(model, runtime)]},
        },
    )
    metadata = owner.metadata(revision, "model", {"modeldeploy.io/revision": revision})
    metadata["labels"]["app.kubernetes.io/version"] = _label_value(model.served_version)
    metadata["annotations"] = {ANNOTATION_SOURCE: json.dumps(source, sort_keys=True, separators=(",", ":"))}
    grace = termination_grace_seconds(runtime, template.get("spec") or {})
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_for(revision)},
        "progressDeadlineSeconds": progress_deadline_seconds,
        "revisionHistoryLimit": 1,
        "template": {
            **template,
            "spec": {
                **restricted(template.get("spec") or {}),
                "terminationGracePeriodSeconds": grace,
            },
        },
    }
    if replicas is None:
        metadata["annotations"][ANNOTATION_SCALED_BY] = SCALED_BY_AUTOSCALER
    else:
        spec = {"replicas": replicas, **spec}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def revision_autoscaler(
    owner: Owner, revision: str, bounds: tuple[int, int], scaling: Autoscaling
) -> dict[str, Any]:
    """The HorizontalPodAutoscaler of one revision: its Deployment, within the bounds the rollout allows."""
    low, high = bounds
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": revision},
        "minReplicas": low,
        "maxReplicas": high,
    }
    if scaling.metrics:
        spec["metrics"] = [metric.to_wire() for metric in scaling.metrics]
    if scaling.behavior is not None:
        spec["behavior"] = scaling.behavior.to_wire()
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": owner.metadata(revision, "autoscaler", {"modeldeploy.io/revision": revision}),
        "spec": spec,
    }


def service(owner: Owner, name: str, revision: str | None, port: int, role: str) -> dict[str, Any]:
    """A Service selecting one revision's pods (or none yet: an empty selector would select all)."""
    selector = selector_for(revision) if revision else {"modeldeploy.io/revision": "none"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": owner.metadata(name, "serving", {"modeldeploy.io/role": role}),
        "spec": {
            "selector": selector,
            "ports": [
                {"name": PORT_NAME, "port": SERVICE_PORT, "targetPort": PORT_NAME, "protocol": "TCP"},
                {"name": "direct", "port": port, "targetPort": PORT_NAME, "protocol": "TCP"},
            ]
            if port != SERVICE_PORT
            else [{"name": PORT_NAME, "port": SERVICE_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }


def _label_value(text: str) -> str:
    return text[:63].strip("-_.") or "unknown"


# --- the fallback backend -------------------------------------------------------------
#
# PreviousRevision: only the Service <name>-fallback, selecting the earlier revision (kept
# running at fallback.replicas). Model: a Deployment <name>-fallback serving fallback.model.
# Response: a Deployment <name>-fallback running stock nginx that answers every request with
# fallback.response, kept in a ConfigMap.


def fallback_objects(
    owner: Owner, spec: ModelDeploymentSpec, previous_revision: str | None
) -> list[dict[str, Any]]:
    """The fallback Service and, for modes Model and Response, its Deployment (and ConfigMap)."""
    fallback = spec.fallback
    assert fallback is not None
    name = owner.fallback_service
    target = previous_revision if fallback.mode == FallbackMode.PREVIOUS_REVISION else name
    svc = service(owner, name, target, spec.runtime.port, "fallback")
    svc["metadata"]["labels"]["app.kubernetes.io/component"] = "fallback"
    if fallback.mode == FallbackMode.PREVIOUS_REVISION:
        return [svc]
    if fallback.mode == FallbackMode.MODEL:
        return [_fallback_model_deployment(owner, spec), svc]
    return [_fallback_response_config(owner, spec), _fallback_response_deployment(owner, spec), svc]


def _fallback_deployment(owner: Owner, spec: ModelDeploymentSpec, pod_spec: dict[str, Any]) -> dict[str, Any]:
    name = owner.fallback_service
    fallback = spec.fallback
    assert fallback is not None
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": owner.metadata(name, "fallback", {LABEL_REVISION: name}),
        "spec": {
            "replicas": fallback.replicas,
            "selector": {"matchLabels": {LABEL_REVISION: name}},
            "template": {"metadata": {"labels": pod_labels(owner.name, name)}, "spec": restricted(pod_spec)},
        },
    }


def _fallback_model_deployment(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any]:
    """The fallback model on the same server (its own image if it names one), probed the same way.

    Only image, port and readiness path carry over from ``spec.runtime``: args,
    env and resources are the main model's and may not suit another image.
    """
    fallback = spec.fallback.model if spec.fallback else None
    assert fallback is not None
    model = ModelSpec(name=fallback.name or spec.model.name, version=fallback.version, uri=fallback.uri)
    runtime = RuntimeSpec(
        image=fallback.image or spec.runtime.image,
        port=spec.runtime.port,
        readiness_path=spec.runtime.readiness_path,
    )
    return _fallback_deployment(owner, spec, {"containers": [model_container(model, runtime)]})


def nginx_config(status: int, content_type: str) -> str:
    """nginx answering every request with the body file; error_page carries a non-200 status."""
    ctype = content_type.replace(";", "\\;").replace("'", "")
    if status == 200:
        location = f"location / {{ default_type '{ctype}'; try_files /body =500; }}"
    else:
        location = (
            f"location / {{ return {status}; }}\n"
            f"    error_page {status} /body;\n"
            f"    location = /body {{ internal; default_type '{ctype}'; }}"
        )
    return f"server {{\n    listen {NGINX_PORT};\n    root {RESPONSE_MOUNT};\n    {location}\n}}\n"


def _fallback_response_config(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any]:
    response = spec.fallback.response if spec.fallback else None
    assert response is not None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": owner.metadata(owner.fallback_service, "fallback"),
        "data": {
            "default.conf": nginx_config(response.status, response.content_type),
            "body": response.body,
        },
    }


def _fallback_response_deployment(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any]:
    name = owner.fallback_service
    container = {
        "name": "response",
        "image": NGINX_IMAGE,
        "ports": [{"name": PORT_NAME, "containerPort": NGINX_PORT, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": PORT_NAME}, "periodSeconds": 5},
        "volumeMounts": [
            {"name": "response", "mountPath": "/etc/nginx/conf.d/default.conf", "subPath": "default.conf"},
            {"name": "response", "mountPath": f"{RESPONSE_MOUNT}/body", "subPath": "body"},
        ],
    }
    pod = {"containers": [container], "volumes": [{"name": "response", "configMap": {"name": name}}]}
    return _fallback_deployment(owner, spec, pod)


def retrain_job(
    owner: Owner,
    name: str,
    template: Mapping[str, Any],
    stable: StableRevision,
    source: Mapping[str, Any] | None,
    breach: MetricResult,
) -> dict[str, Any]:
    """A Job from the user's JobTemplateSpec, owned by the ModelDeployment, told what drifted."""
    job_template = copy.deepcopy(dict(template))
    metadata = owner.metadata(name, "retrain")
    user_meta = job_template.get("metadata") or {}
    metadata["labels"] = {**(user_meta.get("labels") or {}), **metadata["labels"]}
    if user_meta.get("annotations"):
        metadata["annotations"] = dict(user_meta["annotations"])
    model = (source or {}).get("model") or {}
    env = [
        {"name": "MODEL_NAME", "value": str(model.get("name", ""))},
        {"name": "MODEL_VERSION", "value": stable.version},
        {"name": "MODEL_URI", "value": str(model.get("uri", ""))},
        {"name": "MODEL_REVISION", "value": stable.revision},
        {"name": "DRIFT_METRIC", "value": breach.metric},
        {"name": "DRIFT_VALUE", "value": "" if breach.value is None else repr(breach.value)},
    ]
    spec = job_template.get("spec") or {}
    pod = spec.setdefault("template", {}).setdefault("spec", {})
    for container in pod.get("containers", []):
        names = {e["name"] for e in env}
        container["env"] = [e for e in container.get("env", []) if e.get("name") not in names] + env
    spec["template"]["spec"] = restricted(pod)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}
