"""The scale bench's event-to-write latency, read from audit entries: only the operator's answer counts."""

from __future__ import annotations

from typing import Any

from modeldeploy_dev.bench.scale import first_writes


def entry(at: str, user: str, verb: str, resource: str, name: str, sub: str | None = None) -> dict[str, Any]:
    ref = {"resource": resource, "namespace": "scale", "name": name}
    if sub:
        ref["subresource"] = sub
    return {
        "requestReceivedTimestamp": f"2026-12-02T07:00:{at}Z",
        "user": {"username": user},
        "verb": verb,
        "objectRef": ref,
    }


BENCH, OPERATOR = "admin", "modeldeploy-operator"


def test_the_first_write_for_each_object_after_its_change_is_its_answer() -> None:
    entries = [
        entry("01.000000", BENCH, "create", "modeldeployments", "m00001"),
        entry("01.100000", BENCH, "create", "modeldeployments", "m00010"),
        entry("01.200000", OPERATOR, "patch", "modeldeployments", "m00001"),  # the finalizer: bookkeeping
        entry("01.300000", OPERATOR, "create", "events", "m00001.1"),  # an Event is no answer
        entry("01.500000", OPERATOR, "patch", "deployments", "m00001-1-0-0-abcde"),  # m00001's answer
        entry("01.600000", OPERATOR, "get", "deployments", "m00010-1-0-0-abcde"),  # a read is no answer
        entry("02.000000", OPERATOR, "patch", "services", "m00001"),  # a later write of m00001
        entry("02.100000", OPERATOR, "update", "modeldeployments", "m00010", sub="status"),  # m00010's
        entry("02.200000", OPERATOR, "patch", "deployments", "m00099-1-0-0-abcde"),  # no change asked
    ]
    found = first_writes(entries, "scale", {"m00001", "m00010", "m00099"}, {"create"}, None)
    assert {name: round(seconds, 3) for name, seconds in found.items()} == {"m00001": 0.5, "m00010": 1.0}


def test_a_write_before_the_change_or_in_another_namespace_is_not_its_answer() -> None:
    other = entry("01.200000", OPERATOR, "patch", "deployments", "m00001-1-0-0-abcde")
    other["objectRef"]["namespace"] = "elsewhere"
    entries = [
        entry("00.500000", OPERATOR, "patch", "deployments", "m00001-1-0-0-abcde"),
        entry("01.000000", BENCH, "patch", "modeldeployments", "m00001"),
        other,
        entry("01.250000", OPERATOR, "patch", "deployments", "m00001-1-0-0-abcde"),
    ]
    found = first_writes(entries, "scale", {"m00001"}, {"patch"}, None)
    assert {name: round(seconds, 3) for name, seconds in found.items()} == {"m00001": 0.25}
