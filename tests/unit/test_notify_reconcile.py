"""A reconcile hands notices to the outbox only after the status recording them is written."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from modeldeploy.kube.client import ApiError
from modeldeploy.kube.store import Store
from modeldeploy.notify.message import Origin
from modeldeploy.plan.inputs import Inputs, Subject
from modeldeploy.plan.outputs import Notice
from modeldeploy.reconcile.reconciler import Reconciler

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
        if subresource == "status" and self.status_fails:
            raise ApiError(409, "Conflict", "the object has been modified")
        self.status_written = True
        result = copy.deepcopy(BODY)
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


class Outbox:
    def __init__(self) -> None:
        self.submitted: list[tuple[Origin, tuple[Notice, ...]]] = []

    def targets_for(self, namespace: str) -> frozenset[str]:
        return frozenset({"team"})

    def sink_serves(self, namespace: str) -> bool:
        return False

    def submit(self, origin: Origin, notices: tuple[Notice, ...]) -> None:
        self.submitted.append((origin, notices))


def reconciler(client: Client, outbox: Outbox) -> Reconciler:
    store = Store()
    store.put(copy.deepcopy(BODY))
    return Reconciler(client, store, Measurer(), clock=lambda: NOW, outbox=outbox)  # type: ignore[arg-type]


def test_notices_go_to_the_outbox_once_the_status_is_written() -> None:
    client, outbox = Client(status_fails=False), Outbox()
    reconciler(client, outbox)(("risk", "fraud"))
    assert client.status_written
    [(origin, notices)] = outbox.submitted
    assert origin == Origin("risk", "fraud", "fraud-detector")
    assert [(n.event.value, n.targets) for n in notices] == [("RolloutStarted", ("team",))]


def test_a_failed_status_write_sends_nothing() -> None:
    client, outbox = Client(status_fails=True), Outbox()
    with pytest.raises(ApiError):
        reconciler(client, outbox)(("risk", "fraud"))
    assert outbox.submitted == []
