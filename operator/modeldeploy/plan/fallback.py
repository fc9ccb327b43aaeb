"""Fallback: a standing backend that keeps answering when the model cannot.

Three kinds of backend (``spec.fallback.mode``):

- ``PreviousRevision``: the last stable revision is kept running at
  ``fallback.replicas`` instead of being scaled to zero;
- ``Model``: a Deployment ``<name>-fallback`` serving ``fallback.model``;
- ``Response``: a Deployment ``<name>-fallback`` running stock nginx that
  answers every request with ``fallback.response`` (kept in a ConfigMap).

Each sits behind the Service ``<name>-fallback``. Traffic fails over (all of
it, to the fallback) the moment the stable revision has no Ready replica, or
when the trigger metrics fail ``failureLimit`` checks in a row; it comes back
only after ``recoverAfter`` consecutive healthy checks, one per
``trigger.interval``, so a flapping model does not drag users back and forth.
A fallback that is not Ready itself never takes traffic (rule 1).

The trigger's bookkeeping lives in ``status.operatorState.fallback``:
``active``, consecutive ``failures`` and ``healthy`` checks, ``checkedAt``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modeldeploy.api import (
    Fallback,
    FallbackCounters,
    FallbackMode,
    ModelDeploymentSpec,
)
from modeldeploy.plan.revisions import LABEL_REVISION, pod_labels
from modeldeploy.plan.security import restricted
from modeldeploy.plan.workloads import CONTAINER, PORT_NAME, Owner, service

NGINX_IMAGE = "nginxinc/nginx-unprivileged:1.27-alpine"
"""nginx as UID 101, listening on 8080: runs under Pod Security restricted."""
NGINX_PORT = 8080
RESPONSE_MOUNT = "/etc/modeldeploy-fallback"


def fallback_name(owner: Owner) -> str:
    return f"{owner.name}-fallback"


def step(
    fallback: Fallback,
    previous: FallbackCounters,
    stable_ready: int,
    metrics_failing: bool | None,
    check: bool,
    backend_ready: bool,
    now: datetime,
) -> tuple[FallbackCounters, str | None]:
    """The trigger's next state and, on a transition, the Event reason (FallbackActivated/Recovered)."""
    trigger = fallback.trigger
    down = trigger.no_ready_replicas and stable_ready == 0
    failures, healthy, checked = previous.failures, previous.healthy, previous.checked_at
    if check:
        checked = now.replace(microsecond=0)  # as the wire keeps it
        unhealthy = down or bool(metrics_failing)
        failures = failures + 1 if metrics_failing else 0
        healthy = 0 if unhealthy else healthy + 1
    elif down:
        healthy = 0
    active = previous.active
    reason = None
    if not active and backend_ready and (down or failures >= trigger.failure_limit):
        active, healthy, reason = True, 0, "FallbackActivated"
    elif active and healthy >= trigger.recover_after and not down:
        active, failures, reason = False, 0, "FallbackRecovered"
    return FallbackCounters(active=active, failures=failures, healthy=healthy, checked_at=checked), reason


def backend_objects(
    owner: Owner, spec: ModelDeploymentSpec, previous_revision: str | None
) -> list[dict[str, Any]]:
    """The fallback Service and, for modes Model and Response, its Deployment (and ConfigMap)."""
    fallback = spec.fallback
    assert fallback is not None
    name = fallback_name(owner)
    target = previous_revision if fallback.mode == FallbackMode.PREVIOUS_REVISION else name
    svc = service(owner, name, target, spec.runtime.port, "fallback")
    svc["metadata"]["labels"]["app.kubernetes.io/component"] = "fallback"
    if fallback.mode == FallbackMode.PREVIOUS_REVISION:
        return [svc]
    if fallback.mode == FallbackMode.MODEL:
        return [_model_deployment(owner, spec), svc]
    return [_response_config(owner, spec), _response_deployment(owner, spec), svc]


def _deployment(owner: Owner, spec: ModelDeploymentSpec, pod_spec: dict[str, Any]) -> dict[str, Any]:
    name = fallback_name(owner)
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


def _model_deployment(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any]:
    model = spec.fallback.model if spec.fallback else None
    assert model is not None
    env = [
        {"name": "MODEL_NAME", "value": model.name or spec.model.name},
        {"name": "MODEL_VERSION", "value": model.version},
    ]
    if model.uri:
        env.append({"name": "MODEL_URI", "value": model.uri})
    runtime = spec.runtime
    probe: dict[str, Any] = (
        {"httpGet": {"path": runtime.readiness_path, "port": PORT_NAME}}
        if runtime.readiness_path
        else {"tcpSocket": {"port": PORT_NAME}}
    )
    container = {
        "name": CONTAINER,
        "image": model.image or runtime.image,
        "ports": [{"name": PORT_NAME, "containerPort": runtime.port, "protocol": "TCP"}],
        "env": env,
        "readinessProbe": {**probe, "periodSeconds": 5},
    }
    return _deployment(owner, spec, {"containers": [container]})


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


def _response_config(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any]:
    response = spec.fallback.response if spec.fallback else None
    assert response is not None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": owner.metadata(fallback_name(owner), "fallback"),
        "data": {
            "default.conf": nginx_config(response.status, response.content_type),
            "body": response.body,
        },
    }


def _response_deployment(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any]:
    name = fallback_name(owner)
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
    return _deployment(owner, spec, pod)
