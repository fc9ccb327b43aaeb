"""The spec models: camelCase on the wire, strict like the API server, defaults in Python."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from modeldeploy.api import (
    Canary,
    CanaryStep,
    InvalidManifestError,
    ModelDeploymentSpec,
    ModelSpec,
    Router,
    RuntimeSpec,
    Strategy,
    TrafficSpec,
    parse_manifest,
    parse_spec,
)
from modeldeploy.api.problems import field_path, schema_path


def spec(**extra: Any) -> dict[str, Any]:
    return {
        "model": {"name": "fraud", "version": "3.2.0"},
        "runtime": {"image": "ghcr.io/acme/server:1"},
        **extra,
    }


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidManifestError) as caught:
        parse_spec(raw)
    return [str(p) for p in caught.value.problems]


def test_python_code_builds_models_by_field_name_and_the_wire_uses_camel_case() -> None:
    built = ModelDeploymentSpec(
        model=ModelSpec(name="fraud", version="3.2.0"),
        runtime=RuntimeSpec(image="server:1", readiness_path="/ready"),
        strategy=Strategy(canary=Canary(steps=[CanaryStep(weight=5, pause="5m")])),
        revision_history_limit=3,
    )
    wire = built.to_wire()
    assert wire["runtime"]["readinessPath"] == "/ready"
    assert wire["revisionHistoryLimit"] == 3
    assert wire["strategy"] == {
        "canary": {"steps": [{"weight": 5, "pause": "5m"}]},
        "scaleDownDelay": "30s",  # the default, as the API server would store it
    }
    assert parse_spec(wire) == built


def test_manifests_are_read_by_camel_case_names_only() -> None:
    assert problems(spec(revision_history_limit=3)) == ['spec: unknown field "spec.revision_history_limit"']


def test_gateway_api_keeps_its_capitalisation_on_the_wire() -> None:
    traffic = TrafficSpec.model_validate(
        {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}}
    )
    assert traffic.router is Router.GATEWAY_API
    assert "gatewayAPI" in traffic.to_wire()


def test_scalars_are_as_strict_as_the_api_server() -> None:
    assert problems(spec(replicas="3")) == [
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"'
    ]
    assert problems(spec(paused=1)) == [
        'spec.paused: Invalid value: "integer": spec.paused in body must be of type boolean: "integer"'
    ]


def test_integers_are_accepted_where_numbers_are_expected() -> None:
    parsed = parse_spec(spec(analysis={"metrics": [{"name": "errors", "query": "q", "max": 1}]}))
    assert parsed.analysis is not None
    assert parsed.analysis.metrics[0].max == 1.0


def test_integer_resource_quantities_are_read_as_text() -> None:
    parsed = parse_spec(spec(runtime={"image": "x", "resources": {"limits": {"cpu": 2, "memory": "4Gi"}}}))
    assert parsed.runtime.resources is not None
    assert parsed.runtime.resources.limits == {"cpu": "2", "memory": "4Gi"}


def test_models_are_frozen() -> None:
    parsed = parse_spec(spec())
    with pytest.raises(ValidationError):
        parsed.replicas = 3  # type: ignore[misc]
    assert parsed.model_copy(update={"replicas": 3}).replicas == 3


def test_defaults_live_in_the_models_not_in_the_stored_object() -> None:
    parsed = parse_spec(spec(analysis={"metrics": [{"name": "errors", "query": "q", "max": 1}]}))
    assert parsed.analysis is not None
    assert (parsed.analysis.interval, parsed.analysis.failure_limit, parsed.analysis.on_inconclusive) == (
        "1m",
        1,
        "Hold",
    )
    assert parsed.to_wire(exclude_unset=True) == spec(
        analysis={"metrics": [{"name": "errors", "query": "q", "max": 1.0}]}
    )


def test_router_defaults_to_service_without_a_traffic_block() -> None:
    assert parse_spec(spec()).router is Router.SERVICE
    assert parse_spec(spec(traffic={"router": "istio"})).router is Router.ISTIO


def test_explicit_null_reads_as_absent_as_the_api_server_does() -> None:
    parsed = parse_spec(spec(strategy={"canary": None, "blueGreen": {"autoPromote": False}}))
    assert parsed.strategy is not None
    assert parsed.strategy.canary is None


def test_fallback_defaults_to_the_previous_revision_with_a_readiness_trigger() -> None:
    parsed = parse_spec(spec(fallback={}))
    assert parsed.fallback is not None
    assert (parsed.fallback.mode, parsed.fallback.replicas) == ("PreviousRevision", 1)
    assert (parsed.fallback.trigger.no_ready_replicas, parsed.fallback.trigger.recover_after) == (True, 3)


def test_whole_manifests_need_the_right_api_version_and_kind() -> None:
    manifest = {
        "apiVersion": "modeldeploy.io/v1",
        "kind": "ModelDeployment",
        "metadata": {"name": "a"},
        "spec": spec(),
    }
    with pytest.raises(InvalidManifestError) as caught:
        parse_manifest(manifest)
    assert caught.value.problems[0].path == "apiVersion"


def test_one_error_reports_every_problem_found() -> None:
    found = problems(spec(replicas=0, revisionHistoryLimit=-1))
    assert len(found) == 2


def test_paths_are_printed_as_the_api_server_and_kubectl_explain_print_them() -> None:
    loc = ("spec", "strategy", "canary", "steps", 1, "weight")
    assert field_path(loc) == "spec.strategy.canary.steps[1].weight"
    assert schema_path(loc) == "spec.strategy.canary.steps.weight"
