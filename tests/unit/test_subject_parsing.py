"""A ModelDeployment's spec is parsed once per generation (LastParsed); its status on every pass."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from planner_world import NAME, NAMESPACE, spec

from modeldeploy.api import InvalidManifestError
from modeldeploy.plan import inputs
from modeldeploy.plan.inputs import LastParsed, Subject


def body(
    version: str = "1.0.0", generation: int = 1, resource_version: str = "10", **status: Any
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "uid": "u-1",
            "generation": generation,
            "resourceVersion": resource_version,
        },
        "spec": spec(version),
        "status": {"phase": "Stable", **status},
    }


@pytest.fixture(autouse=True)
def parsed(monkeypatch: pytest.MonkeyPatch) -> LastParsed:
    memo = LastParsed()
    monkeypatch.setattr(inputs, "PARSED", memo)
    return memo


def test_a_generation_parsed_before_is_taken_again_and_a_new_one_parsed() -> None:
    first = Subject.from_body(body()).parsed_spec
    # A status write: a new version, the same generation (and an equal spec, in a new dict).
    assert Subject.from_body(copy.deepcopy(body(resource_version="11"))).parsed_spec is first
    changed = Subject.from_body(body("2.0.0", generation=2, resource_version="12")).parsed_spec
    assert changed is not first and changed.model.version == "2.0.0"


def test_a_status_is_parsed_for_each_subject() -> None:
    first = Subject.from_body(body()).parsed_status
    assert Subject.from_body(body()).parsed_status == first
    written = Subject.from_body(body(resource_version="11", message="promoted")).parsed_status
    assert written.message == "promoted"


def test_bodies_that_did_not_come_from_the_api_server_are_always_parsed() -> None:
    unversioned = body(resource_version="")
    first = Subject.from_body(unversioned).parsed_spec
    unversioned["spec"] = spec("2.0.0")  # a test's body, changed in place without a new generation
    assert Subject.from_body(unversioned).parsed_spec.model.version == "2.0.0" != first.model.version


def test_an_invalid_spec_is_refused_each_time_and_not_kept() -> None:
    bad = body()
    bad["spec"]["replicas"] = "many"
    for _ in range(2):
        with pytest.raises(InvalidManifestError):
            _ = Subject.from_body(bad).parsed_spec


def test_each_model_deployment_keeps_its_own_until_forgotten(parsed: LastParsed) -> None:
    mine = Subject.from_body(body()).parsed_spec
    other = body("3.0.0")
    other["metadata"]["name"] = "other"
    assert Subject.from_body(other).parsed_spec.model.version == "3.0.0"
    assert Subject.from_body(body()).parsed_spec is mine
    parsed.forget(NAMESPACE, NAME)
    assert Subject.from_body(body()).parsed_spec is not mine
