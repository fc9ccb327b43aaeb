"""A namespace being deleted refuses every create: its ModelDeployments stop asking, once told.

The fake API server refuses creates as the NamespaceLifecycle admission plugin
does (403, "because it is being terminated") and accepts updates of objects
that still exist. test_namespace_deletion.py deletes such a namespace on a real
one.
"""

from __future__ import annotations

import copy
from typing import Any

from reconcile_fakes import BODY, NOW

from modeldeploy.kube.apply import Actor
from modeldeploy.kube.client import ApiError, Kind
from modeldeploy.kube.store import Store
from modeldeploy.plan.inputs import Subject
from modeldeploy.plan.outputs import Plan

LABELS = {"app.kubernetes.io/managed-by": "modeldeploy", "modeldeploy.io/name": "fraud"}


class TerminatingNamespace:
    def __init__(self, existing: set[str]) -> None:
        self.existing = existing
        self.requests: list[tuple[str, int]] = []

    def apply(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        if name not in self.existing:
            self.requests.append((name, 403))
            raise ApiError(
                403,
                "Forbidden",
                f'services "{name}" is forbidden: unable to create new content in '
                "namespace risk because it is being terminated",
            )
        self.requests.append((name, 200))
        return {**body, "metadata": {**body["metadata"], "resourceVersion": "9"}}


def service(name: str, port: int = 80) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "risk", "labels": LABELS},
        "spec": {"ports": [{"port": port}]},
    }


def subject(uid: str = "uid-1") -> Subject:
    body = copy.deepcopy(BODY)
    body["metadata"]["uid"] = uid
    return Subject.from_body(body)


def test_after_one_refused_create_no_child_is_created_again_but_existing_ones_are_still_updated() -> None:
    server, store = TerminatingNamespace(existing={"fraud"}), Store()
    store.put({**service("fraud"), "metadata": {**service("fraud")["metadata"], "resourceVersion": "3"}})
    actor = Actor(server, store)  # type: ignore[arg-type]
    plan = Plan(apply=(service("fraud-candidate"), service("fraud-fallback"), service("fraud", port=81)))

    assert actor.act(subject(), plan, NOW).wrote == 1
    assert server.requests == [("fraud-candidate", 403), ("fraud", 200)]  # the fallback was not asked for

    server.requests.clear()
    actor.act(subject(), Plan(apply=(service("fraud-candidate"), service("fraud", port=82))), NOW)
    assert server.requests == [("fraud", 200)]


def test_a_model_deployment_of_the_same_name_in_a_namespace_made_again_creates_its_children() -> None:
    server, store = TerminatingNamespace(existing=set()), Store()
    actor = Actor(server, store)  # type: ignore[arg-type]
    actor.act(subject("uid-1"), Plan(apply=(service("fraud"),)), NOW)
    server.requests.clear()
    actor.act(subject("uid-2"), Plan(apply=(service("fraud"),)), NOW)  # not the one refused
    assert server.requests == [("fraud", 403)]
    actor.forget("risk", "fraud")
    server.requests.clear()
    actor.act(subject("uid-2"), Plan(apply=(service("fraud"),)), NOW)
    assert server.requests == [("fraud", 403)]
