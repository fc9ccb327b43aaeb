"""Pod Security ``restricted`` by default for every pod the operator makes.

Model pods, the fallback server and retraining Jobs are created with the
operator's rights from what tenants write, so they start from the
``restricted`` Pod Security profile: non-root, no privilege escalation, every
capability dropped, the runtime's default seccomp profile. A pod template may
still set its own ``securityContext`` fields (they win, key by key, so a
``runAsUser`` is kept); the chart's admission policies decide what a template
may not loosen (privileged, host namespaces, hostPath, added capabilities).
"""

from __future__ import annotations

from typing import Any

RESTRICTED_POD: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _under(defaults: dict[str, Any], given: Any) -> dict[str, Any]:
    """``given`` over a fresh copy of ``defaults`` (the template's own values are shared, as in
    :func:`~modeldeploy.plan.workloads.deep_merge`; the constants above never are)."""
    merged: dict[str, Any] = _fresh(defaults)
    for key, value in (given or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _under(merged[key], value)
        else:
            merged[key] = value
    return merged


def _fresh(value: Any) -> Any:
    """A copy of a JSON value: new dicts and lists all the way down."""
    if isinstance(value, dict):
        return {key: _fresh(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_fresh(inner) for inner in value]
    return value


def restricted(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """``pod_spec`` with the restricted defaults under its own pod and container security contexts."""
    out = dict(pod_spec)
    out["securityContext"] = _under(RESTRICTED_POD, pod_spec.get("securityContext"))
    for key in ("initContainers", "containers"):
        if key in pod_spec:
            out[key] = [
                {**c, "securityContext": _under(RESTRICTED_CONTAINER, c.get("securityContext"))}
                for c in pod_spec[key]
            ]
    return out
