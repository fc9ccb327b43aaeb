"""Fakes for driving one Reconciler call without a cluster: a ModelDeployment, an API client, a measurer."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from modeldeploy.kube.client import ApiError
from modeldeploy.plan.inputs import Inputs, Subject

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
BODY: dict[str, Any] = {
    "apiVersion": "modeldeploy.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "fraud", "namespace": "risk", "uid": "u1", "generation": 1, "resourceVersion": "1"},
    "spec": {
        "model": {"name": "fraud-detector", "version": "1.0.0", "uri": "s3://m/1"},
        "runtime": {"image": "ghcr.io/acme/server:1"},
        "notifications": [{"events": ["RolloutStarted"], "target": "team"}],
    },
}


class Client:
    """Answers applies and creates with what was sent; the status write fails when told to."""

    def __init__(self, status_fails: bool) -> None:
        self.status_fails = status_fails
        self.status_written = False

    def apply(self, kind: Any, obj: dict[str, Any]) -> dict[str, Any]:
        result = copy.deepcopy(obj)
        result["metadata"]["resourceVersion"] = "2"
        return result

    def merge_patch(
        self, kind: Any, namespace: str, name: str, patch: dict[str, Any], subresource: str | None = None
    ) -> dict[str, Any]:
        result = copy.deepcopy(BODY)
        if not subresource:  # the finalizer
            result["metadata"] = {**result["metadata"], **patch["metadata"], "resourceVersion": "2"}
            return result
        if subresource == "status" and self.status_fails:
            raise ApiError(409, "Conflict", "the object has been modified")
        self.status_written = True
        result["metadata"]["resourceVersion"] = "3"
        result["status"] = patch["status"]
        return result

    def create(self, kind: Any, body: dict[str, Any]) -> dict[str, Any]:
        return body

    def delete(self, *args: Any) -> None:
        return None


class Measurer:
    pool = None

    def inputs(self, subject: Subject, now: datetime) -> Inputs:
        return Inputs()

    def pending(self, subject: Subject) -> bool:
        return False

    def registry_wake(self, subject: Subject) -> float | None:
        return None

    def forget(self, key: object) -> None:
        pass
