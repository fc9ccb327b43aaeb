"""kube/act.py's writes: an object at rest costs none; a status patch clears what the plan dropped.

The API server is replaced by a recorder here (a fast test of the Actor alone);
the integration test test_idle_cost.py measures the same promise on a real one.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import requests
from hypothesis import given
from hypothesis import strategies as st
from planner_world import NAME, NAMESPACE, World, spec

from modeldeploy.kube.apply import Actor, contains, status_patch
from modeldeploy.kube.client import ApiError, Kind
from modeldeploy.kube.store import Store
from modeldeploy.plan.outputs import Event, ObjectRef, Plan

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SERVER_DEFAULTS: dict[str, dict[str, Any]] = {
    "Deployment": {"revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
    "Service": {"clusterIP": "192.0.2.12", "type": "ClusterIP", "sessionAffinity": "None"},
}


class RecordingServer:
    """Records writes; answers them as the API server does (its defaults added, a new resourceVersion)."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str, str]] = []  # (verb, kind, name)
        self.requests: list[tuple[str, str, str | None, str, str]] = []  # (verb, kind, namespace, name, sub)
        self.patches: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []
        self.version = 1000

    def _record(self, verb: str, kind: Kind, namespace: str | None, name: str, subresource: str = "") -> None:
        assert kind.kind in {"ModelDeployment", "Deployment", "Service", "HTTPRoute", "Event", "ConfigMap"}
        self.writes.append((verb, kind.kind, name))
        self.requests.append((verb, kind.kind, namespace, name, subresource))

    def apply(self, kind: Kind, body: dict[str, Any], subresource: str = "") -> dict[str, Any]:
        assert kind.kind == body["kind"]
        self._record("apply", kind, body["metadata"].get("namespace"), body["metadata"]["name"], subresource)
        return self.stored(body)

    def merge_patch(
        self, kind: Kind, namespace: str | None, name: str, patch: dict[str, Any], subresource: str = ""
    ) -> dict[str, Any]:
        self._record("patch", kind, namespace, name, subresource)
        self.patches.append(patch)
        return self.stored(
            {
                "apiVersion": kind.api_version,
                "kind": kind.kind,
                "metadata": {"name": name, "namespace": namespace},
            }
        )

    def delete(self, kind: Kind, namespace: str | None, name: str) -> bool:
        self._record("delete", kind, namespace, name)
        return True

    def create(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        self._record("create", kind, body["metadata"].get("namespace"), body["metadata"].get("name", ""))
        self.created.append(body)
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
    assert not contains(desired, {"spec": {"replicas": {"value": 2}, "ports": [{"port": 80}]}})
    assert not contains({"spec": {"replicas": None}}, {"spec": {}})
    assert contains({"spec": {"replicas": None}}, {"spec": {"replicas": None}})
    assert contains(["a", "b"], ["a", "b"]) and not contains(["a", "b"], ["a", "c"])
    # Mappings that are not dicts are compared as dicts are, either side.
    assert contains(
        MappingProxyType(desired), {"spec": MappingProxyType({"replicas": 2, "ports": [{"port": 80}]})}
    )
    assert not contains(MappingProxyType({"a": 1}), MappingProxyType({"a": 2}))


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


def contained(desired: Any, actual: Any) -> bool:
    """The definition of contains, as plainly as it can be written."""
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(
            k in actual and contained(v, actual[k]) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(actual, list) and len(desired) == len(actual) and all(map(contained, desired, actual))
        )
    return bool(desired == actual)


@given(desired=STATUS, actual=STATUS, extra=STATUS)
def test_contains_is_its_plain_definition(
    desired: dict[str, Any], actual: dict[str, Any], extra: dict[str, Any]
) -> None:
    assert contains(desired, actual) == contained(desired, actual)
    both = {**extra, **desired}  # desired, with fields the server adds
    assert contains(desired, both) and contained(desired, both)


def test_a_plan_is_carried_out_in_the_subjects_namespace_with_status_to_its_subresource() -> None:
    world = settled_world()
    subject = world.subject()
    old = ObjectRef("apps/v1", "Deployment", NAMESPACE, "fraud-old")
    plan = Plan(
        scale=(("fraud-1-0-0", 0),),
        delete=(old,),
        status={**world.status, "message": "something new"},
        events=(Event("Normal", "Promoted", "fraud-2 takes all traffic"),),
    )
    server = RecordingServer()

    Actor(server, Store()).act(subject, plan, NOW)  # type: ignore[arg-type]

    assert server.requests[:3] == [
        ("patch", "Deployment", NAMESPACE, "fraud-1-0-0", ""),
        ("delete", "Deployment", NAMESPACE, "fraud-old", ""),
        ("patch", "ModelDeployment", NAMESPACE, NAME, "status"),
    ]
    assert server.patches == [{"spec": {"replicas": 0}}, {"status": {"message": "something new"}}]
    assert [r[:2] for r in server.requests[3:]] == [("create", "Event")]
    (event,) = server.created
    assert (event["reason"], event["message"], event["type"]) == (
        "Promoted",
        "fraud-2 takes all traffic",
        "Normal",
    )
    assert event["involvedObject"] == {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "name": NAME,
        "namespace": NAMESPACE,
        "uid": subject.uid,
    }
    assert event["metadata"]["namespace"] == NAMESPACE
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2026-11-22T12:00:00Z"


def test_a_deployment_already_at_the_wanted_size_is_not_patched() -> None:
    server = RecordingServer()
    store = Store()
    store.put(
        server.stored(
            {
                "kind": "Deployment",
                "metadata": {"name": "fraud-1", "namespace": NAMESPACE},
                "spec": {"replicas": 0},
            }
        )
    )
    subject = settled_world().subject()
    Actor(server, store).act(subject, Plan(scale=(("fraud-1", 0),)), NOW)  # type: ignore[arg-type]
    assert (
        server.requests == [("patch", "ModelDeployment", NAMESPACE, NAME, "status")] or server.requests == []
    )


class RespellingServer(RecordingServer):
    """Stores a CPU request of 1000m as 1, as the API server does: the stored object never contains ours."""

    def stored(self, desired: dict[str, Any]) -> dict[str, Any]:
        body = super().stored(desired)
        body.setdefault("spec", {})["cpu"] = "1"
        return body


def test_an_object_the_server_respells_is_applied_once_then_again_only_after_someone_else_changed_it() -> (
    None
):
    desired = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "fraud-warmup", "namespace": NAMESPACE},
        "spec": {"cpu": "1000m"},
    }
    server = RespellingServer()
    store = Store()
    actor = Actor(server, store)  # type: ignore[arg-type]
    subject = settled_world().subject()
    plan = Plan(apply=(copy.deepcopy(desired),))

    actor.act(subject, plan, NOW)
    actor.act(subject, plan, NOW)
    assert server.writes == [("apply", "ConfigMap", "fraud-warmup")]

    store.put(server.stored(desired))  # someone else wrote it: a newer resourceVersion
    actor.act(subject, plan, NOW)
    assert server.writes == [("apply", "ConfigMap", "fraud-warmup")] * 2

    other = copy.deepcopy(desired)
    other["spec"]["replicas"] = 2  # a different desired object is never taken as settled
    actor.act(subject, Plan(apply=(other,)), NOW)
    assert len(server.writes) == 3


class EventlessServer(RecordingServer):
    def create(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        super().create(kind, body)
        raise ApiError(403, "Forbidden", "events is forbidden")


def test_an_event_is_a_courtesy_bounded_in_size_and_its_failure_fails_nothing() -> None:
    subject = settled_world().subject()
    server = EventlessServer()
    long = "x" * 5000
    plan = Plan(events=(Event("Warning", "RolledBack", long), Event("Normal", "Promoted", "ok")))

    Actor(server, Store()).act(subject, plan, NOW)  # type: ignore[arg-type]

    first, second = server.created
    assert first["message"] == "x" * 1024
    assert (first["count"], first["source"], first["reportingComponent"]) == (
        1,
        {"component": "modeldeploy"},
        "modeldeploy",
    )
    assert (
        first["metadata"]["name"].startswith(f"{NAME}.")
        and first["metadata"]["name"] != second["metadata"]["name"]
    )
    assert second["reason"] == "Promoted"


class FlakyEventServer(RecordingServer):
    """Refuses the first Event, cannot be reached for the second, stores the third."""

    def create(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        super().create(kind, body)
        if len(self.created) == 1:
            raise ApiError(403, "Forbidden", "events is forbidden")
        if len(self.created) == 2:
            raise requests.ConnectionError("connection refused")
        return body


def test_an_event_that_is_refused_or_cannot_reach_the_server_fails_nothing_and_the_next_is_posted() -> None:
    server = FlakyEventServer()
    plan = Plan(
        status={"phase": "Stable"},
        events=(
            Event("Warning", "RolledBack", "a"),
            Event("Normal", "Promoted", "b"),
            Event("Normal", "Ok", "c"),
        ),
    )

    acted = Actor(server, Store()).act(settled_world().subject(), plan, NOW)  # type: ignore[arg-type]

    assert acted.wrote == 1  # the status, written before the Events
    assert [body["reason"] for body in server.created] == ["RolledBack", "Promoted", "Ok"]
