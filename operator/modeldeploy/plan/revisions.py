"""Revisions: what a model version plus its runtime is called, and how its objects are labelled.

A revision is the pair (spec.model, spec.runtime). Its name,
``<name>-<version-slug>-<hash>``, is stable for the same pair and differs for
any change to it, and only to it: strategy, analysis and thresholds are not
hashed, so tuning them never starts a rollout. The name is also the
Deployment's name and the value of the ``modeldeploy.io/revision`` label on its
pods, so it stays within 63 characters.

Roles (stable, candidate, fallback) are never written on pods: they live in
Service selectors and routes, so promotion and rollback move traffic without
restarting anything.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from modeldeploy.api import ModelSpec, RuntimeSpec

LABEL_NAME = "modeldeploy.io/name"
LABEL_REVISION = "modeldeploy.io/revision"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "modeldeploy"
ANNOTATION_SOURCE = "modeldeploy.io/revision-source"
ANNOTATION_SCALED_BY = "modeldeploy.io/replicas-owner"
"""On a revision's Deployment: ``autoscaler`` once its replica count belongs to its HPA."""
SCALED_BY_AUTOSCALER = "autoscaler"

MAX_LABEL = 63
HASH_LENGTH = 5


def revision_source(model: ModelSpec, runtime: RuntimeSpec) -> dict[str, Any]:
    """What a revision is made of, as stored (to re-render it later, e.g. for undo)."""
    return {"model": model.to_wire(), "runtime": runtime.to_wire()}


def revision_hash(source: dict[str, Any]) -> str:
    # The model card documents a version; editing its prose is not a new revision.
    hashed = {
        "model": {k: v for k, v in source["model"].items() if k != "card"},
        "runtime": source["runtime"],
    }
    return canonical_digest(hashed)[:HASH_LENGTH]


def canonical_digest(value: Any) -> str:
    """SHA-256 (hex) of value as canonical JSON: keys sorted, no spaces; equal for equal values."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def version_slug(version: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", version.lower()).strip("-")
    return slug or "v"


def revision_name(name: str, source: dict[str, Any]) -> str:
    """``fraud-3-2-0-7c9f2``: readable, unique per (model, runtime), at most 63 characters."""
    digest = revision_hash(source)
    room = MAX_LABEL - len(name) - len(digest) - 2
    slug = version_slug(str(source["model"]["version"]))[: max(room, 1)].strip("-") or "v"
    return f"{name}-{slug}-{digest}"


LABEL_INSTANCE = "app.kubernetes.io/instance"


def instance_labels(name: str, component: str) -> dict[str, str]:
    """Labels on every object the operator makes for ModelDeployment ``name``."""
    return {
        LABEL_INSTANCE: name,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_COMPONENT: component,
        LABEL_NAME: name,
    }


def pod_labels(name: str, revision: str) -> dict[str, str]:
    """Labels on a revision's pods: which instance and which revision, never which role."""
    return {LABEL_INSTANCE: name, LABEL_MANAGED_BY: MANAGED_BY, LABEL_REVISION: revision}


def selector_for(revision: str) -> dict[str, str]:
    return {LABEL_REVISION: revision}
