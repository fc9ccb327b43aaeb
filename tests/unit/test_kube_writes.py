"""kube/act.py's writes: an object at rest costs none; a status patch clears what the plan dropped.

The API server is replaced by a recorder here (a fast test of the Actor alone);
the integration test test_idle_cost.py measures the same promise on a real one.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from modeldeploy.kube.act import Actor, contains, status_patch
from modeldeploy.plan.model import Plan
from planner_world import NAME, World, spec

from modeldeploy.kube.client import Kind
from modeldeploy.kube.store import Store

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SERVER_DEFAULTS: dict[str, dict[str, Any]] = {
    "Deployment": {"revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
    "Service": {"clusterIP": "192.0.2.12", "type": "ClusterIP", "sessionAffinity": "None"},
}


class RecordingServer:
    """Records writes; answers them as the API server does (its defaults added, a new resourceVersion)."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str, str]] = []
        self.patches: list[dict[str, Any]] = []
        self.version = 1000

    def apply(self, kind: Kind, body: dict[str, Any], subresource: str = "") -> dict[str, Any]:
        self.writes.append(("apply", body["kind"], body["metadata"]["name"]))
        return self.stored(body)

    def merge_patch(
        self, kind: Kind, namespace: str | None, name: str, patch: dict[str, Any], subresource: str = ""
    ) -> dict[str, Any]:
        self.writes.append(("patch", kind.kind, name))
        self.patches.append(patch)
        return self.stored({"apiVersion": kind.api_version, "kind": kind.kind, "metadata": {"name": name}})

    def delete(self, kind: Kind, namespace: str | None, name: str) -> bool:
        self.writes.append(("delete", kind.kind, name))
        return True

    def create(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("create", body["kind"], body["metadata"].get("name", "")))
        return body

    def stored(self, desired: dict[str, Any]) -> dict[str, Any]:
        """desired as a GET returns it: server-set metadata, defaulted fields, a status."""
        self.version += 1
        body = copy.deepcopy(desired)
        body["metadata"].update(
            resourceVersion=str(self.version),
            uid=f"uid-{self.version}",
            creationTimestamp="2026-11-22T10:00:00Z",
            managedFields=[{"manager": "modeldeploy", "operation": "Apply"}],
        )
        spec_ = body.setdefault("spec", {})
        for key, value in SERVER_DEFAULTS.get(body["kind"], {}).items():
            spec_.setdefault(key, value)
        if body["kind"] == "Deployment":
            for container in spec_.get("template", {}).get("spec", {}).get("containers", []):
                container.setdefault("imagePullPolicy", "IfNotPresent")
                container.setdefault("terminationMessagePath", "/dev/termination-log")
            body["status"] = {"replicas": spec_.get("replicas", 1), "readyReplicas": spec_.get("replicas", 1)}
        return body


def settled_world() -> World:
    world = World(spec("1.0.0", replicas=2))
    world.reconcile()
    world.ready_all()
    world.settle()
    world.edit(model={"name": "fraud-detector", "version": "2.0.0"})
    world.reconcile()
    world.ready_all()
    world.settle()
    assert world.status["stable"]["version"] == "2.0.0"
    return world


def test_a_restarted_operator_makes_no_write_for_a_deployment_at_rest() -> None:
    """The zero-idle-writes promise: every object the plan wants is already there, as the server keeps it."""
    world = settled_world()
    at_rest = world.reconcile()
    assert at_rest.status == world.status and at_rest.events == ()
    server = RecordingServer()
    store = Store()
    for obj in at_rest.apply:
        store.put(server.stored(obj))
    server.writes.clear()

    Actor(server, store).act(world.subject(), at_rest, NOW)  # type: ignore[arg-type]

    assert server.writes == []


def test_a_field_that_differs_is_applied_once() -> None:
    world = settled_world()
    at_rest = world.reconcile()
    server = RecordingServer()
    store = Store()
    for obj in at_rest.apply:
        stored = server.stored(obj)
        if obj["kind"] == "Service" and obj["metadata"]["name"] == NAME:
            stored["spec"]["selector"] = {"modeldeploy.io/revision": "someone-else"}
        store.put(stored)
    server.writes.clear()
    actor = Actor(server, store)  # type: ignore[arg-type]

    actor.act(world.subject(), at_rest, NOW)
    actor.act(world.subject(), at_rest, NOW)

    assert server.writes == [("apply", "Service", NAME)]


def test_contains_compares_only_what_the_operator_sets() -> None:
    desired = {"spec": {"replicas": 2, "ports": [{"port": 80}]}}
    assert contains(desired, {"spec": {"replicas": 2, "ports": [{"port": 80, "protocol": "TCP"}], "x": 1}})
    assert not contains(desired, {"spec": {"replicas": 3, "ports": [{"port": 80}]}})
    assert not contains(desired, {"spec": {"replicas": 2, "ports": [{"port": 80}, {"port": 81}]}})
    assert not contains(desired, {"spec": {"replicas": 2}})
    assert not contains(desired, {"spec": [2]})


def test_a_status_key_the_plan_drops_is_cleared_with_null() -> None:
    current = {"phase": "Stable", "action": {"type": "Promote"}, "candidate": {"revision": "r2", "step": 1}}
    desired = {"phase": "Stable", "candidate": {"revision": "r2"}}
    assert status_patch(current, desired) == {"action": None, "candidate": {"step": None}}


def test_a_handled_action_is_removed_from_the_status_on_the_server() -> None:
    """status.action is how users ask for promote/abort/undo: once handled, the patch must clear it."""
    world = settled_world()
    world.action("Retry")
    subject = world.subject()
    decided = world.reconcile()
    assert decided.status is not None and "action" not in decided.status
    server = RecordingServer()

    Actor(server, Store()).act(subject, Plan(status=decided.status), NOW)  # type: ignore[arg-type]

    assert len(server.patches) == 1
    assert server.patches[0]["status"]["action"] is None


def test_an_unchanged_status_is_not_written() -> None:
    world = settled_world()
    server = RecordingServer()
    subject = dataclasses.replace(world.subject())
    Actor(server, Store()).act(subject, Plan(status=copy.deepcopy(world.status)), NOW)  # type: ignore[arg-type]
    assert server.writes == []


JSON_LEAF = st.one_of(st.booleans(), st.integers(-3, 3), st.text(max_size=3))
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from("abcd"), children, max_size=3)
    ),
    max_leaves=12,
)
STATUS = st.dictionaries(st.sampled_from(["phase", "action", "stable", "candidate", "traffic"]), JSON_VALUE)


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies it."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


@given(current=STATUS, desired=STATUS)
def test_the_status_patch_turns_the_current_status_into_the_desired_one(
    current: dict[str, Any], desired: dict[str, Any]
) -> None:
    assert merge(current, status_patch(current, desired)) == desired
