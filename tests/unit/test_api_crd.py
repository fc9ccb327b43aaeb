"""The generated CRD: fresh, structural, documented, GitOps-safe, and every CEL rule exercised."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from modeldeploy.api.crd import render_crd, render_crd_yaml

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "crds" / "modeldeployment.yaml"
CORPUS = sorted((ROOT / "tests" / "manifests" / "invalid").glob("*.yaml"))
OPEN_OBJECTS = {
    "spec.runtime.podTemplate",
    "spec.runtime.env.valueFrom",
    "spec.monitoring.retrain.jobTemplate",
    "status.operatorState",
}


def schema() -> dict[str, Any]:
    root: dict[str, Any] = render_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return root


def nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from nodes(child, f"{path}.{name}".lstrip("."))
    if isinstance(node.get("items"), dict):
        yield from nodes(node["items"], path)
    if isinstance(node.get("additionalProperties"), dict):
        yield from nodes(node["additionalProperties"], path)


def test_committed_crd_is_up_to_date() -> None:
    assert COMMITTED.read_text() == render_crd_yaml(), (
        "crds/modeldeployment.yaml is stale: run `make crds` (python -m modeldeploy.api.crd)"
    )


def test_crd_names_match_the_design() -> None:
    crd = render_crd()
    names = crd["spec"]["names"]
    assert crd["metadata"]["name"] == "modeldeployments.modeldeploy.io"
    assert (names["kind"], names["plural"], names["singular"]) == (
        "ModelDeployment",
        "modeldeployments",
        "modeldeployment",
    )
    assert names["shortNames"] == ["mdep", "md"]
    assert names["categories"] == ["modeldeploy"]
    version = crd["spec"]["versions"][0]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_printer_columns_show_rollout_state_and_more_with_wide() -> None:
    columns = render_crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    default = [c["name"] for c in columns if c.get("priority", 0) == 0]
    wide = [c["name"] for c in columns if c.get("priority", 0) == 1]
    assert default == ["Phase", "Stable", "Candidate", "Stage", "Weight", "Age"]
    assert wide == ["Router", "Message"]


def test_schema_is_structural() -> None:
    for path, node in nodes(schema()):
        assert "$ref" not in node and "$defs" not in node, path
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        assert node.get("additionalProperties") is not False, f"{path}: additionalProperties: false"
        assert not ("properties" in node and "additionalProperties" in node), path
        # JSON Schema keywords the API server's structural schemas do not have (it refuses the CRD).
        assert not {"propertyNames", "patternProperties", "const", "$schema"} & node.keys(), path
        for branch in node.get("anyOf", []):
            assert "type" not in branch or node.get("x-kubernetes-int-or-string"), path


def test_schema_sets_no_defaults_so_stored_objects_equal_git() -> None:
    assert all("default" not in node for _, node in nodes(schema()))


def test_unknown_fields_are_kept_only_in_open_objects() -> None:
    preserved = {path for path, node in nodes(schema()) if node.get("x-kubernetes-preserve-unknown-fields")}
    assert preserved == OPEN_OBJECTS


def test_every_field_is_documented_for_kubectl_explain() -> None:
    for path, node in nodes(schema()):
        if path.split(".")[0] in ("spec", "status"):
            for name, child in node.get("properties", {}).items():
                assert child.get("description"), f"{path}.{name} has no description"


def test_optional_fields_are_nullable_and_required_ones_are_not() -> None:
    for path, node in nodes(schema()):
        required = set(node.get("required", []))
        for name, child in node.get("properties", {}).items():
            if name in required:
                assert not child.get("nullable"), f"{path}.{name}"


def test_strings_and_lists_are_bounded_to_keep_cel_cost_low() -> None:
    for path, node in nodes(schema()):
        if not path.startswith("spec") or node.get("x-kubernetes-preserve-unknown-fields"):
            continue
        if node.get("type") == "string" and "enum" not in node:
            assert "maxLength" in node, f"{path} needs maxLength"
        if node.get("type") == "array":
            assert "maxItems" in node, f"{path} needs maxItems"


def test_every_cel_rule_names_a_field_in_its_message() -> None:
    for path, node in nodes(schema()):
        for rule in node.get("x-kubernetes-validations", []):
            assert "{path}" not in rule["message"]
            assert rule["message"].startswith(("spec", "status", "metadata")), (path, rule["message"])


def test_every_cel_rule_is_exercised_by_the_invalid_corpus() -> None:
    expectations = [path.read_text().splitlines()[0].removeprefix("# expect: ") for path in CORPUS]
    messages_by_rule: dict[str, list[str]] = {}
    for path, node in nodes(schema()):
        for entry in node.get("x-kubernetes-validations", []):
            if "oldSelf" in entry["rule"] or path.startswith("status"):
                continue  # the lock and status actions have tests of their own
            messages_by_rule.setdefault(entry["rule"], []).append(entry["message"])
    untested = [
        rule
        for rule, messages in messages_by_rule.items()
        if not any(expected in message for expected in expectations for message in messages)
    ]
    assert untested == []


def test_crd_yaml_parses_back_to_the_rendered_dict() -> None:
    text = render_crd_yaml()
    assert text.startswith("# Generated by `make crds`")
    assert yaml.safe_load(text) == render_crd()
