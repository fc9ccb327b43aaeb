"""Operator-side validation: what CEL cannot check, and the Python twin of the lock."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modeldeploy.api import (
    LOCKED_MESSAGE,
    TEMPLATE_VARIABLES,
    check_spec,
    check_update,
    lint_manifest,
    parse_spec,
)


def manifest(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "fraud"},
        "spec": {"model": {"name": "fraud", "version": "3.2.0"}, "runtime": {"image": "server:1"}, **spec},
    }


def analysis(query: str) -> dict[str, Any]:
    return {"metrics": [{"name": "errors", "query": query, "max": 0.01}]}


def test_every_documented_template_variable_is_accepted() -> None:
    query = " + ".join(f'x{{l="{{{{{name}}}}}"}}' for name in sorted(TEMPLATE_VARIABLES))
    assert lint_manifest(manifest(analysis=analysis(query))) == []


def test_unknown_template_variable_is_reported_with_the_query_path() -> None:
    found = lint_manifest(manifest(analysis=analysis('rate(x{revision="{{revison}}"}[1m])')))
    assert [p.path for p in found] == ["spec.analysis.metrics[0].query"]
    assert "unknown template variable {{revison}}" in found[0].message


def test_template_variables_are_checked_in_monitoring_and_fallback_queries_too() -> None:
    metric = {"name": "drift", "query": "x{m='{{model}}'}", "max": 1}
    found = lint_manifest(
        manifest(monitoring={"metrics": [metric]}, fallback={"trigger": {"metrics": [metric]}})
    )
    assert {p.path for p in found} == {
        "spec.monitoring.metrics[0].query",
        "spec.fallback.trigger.metrics[0].query",
    }


def test_unbalanced_braces_are_reported() -> None:
    found = lint_manifest(manifest(analysis=analysis('x{revision="{{revision}"}')))
    assert [p.message for p in found] == ["unbalanced {{ or }}: write variables as {{revision}}"]


def test_pod_template_holds_only_metadata_and_spec() -> None:
    spec = parse_spec(
        manifest()["spec"] | {"runtime": {"image": "x", "podTemplate": {"spec": {}, "replicas": 2}}}
    )
    found = check_spec(spec)
    assert [p.path for p in found] == ["spec.runtime.podTemplate"]
    assert found[0].message == (
        'unknown field "spec.runtime.podTemplate.replicas": a template holds only metadata and spec'
    )


def test_templates_may_not_set_the_operators_labels() -> None:
    pod_template = {"metadata": {"labels": {"modeldeploy.io/revision": "x", "team": "risk"}}}
    spec = parse_spec(manifest()["spec"] | {"runtime": {"image": "x", "podTemplate": pod_template}})
    assert [p.path for p in check_spec(spec)] == ["spec.runtime.podTemplate.metadata.labels"]


def test_retrain_job_template_needs_a_pod_template() -> None:
    retrain = {"jobTemplate": {"spec": {"backoffLimit": 1}}}
    spec = parse_spec(
        manifest(monitoring={"metrics": [{"name": "d", "query": "q", "max": 1}], "retrain": retrain})["spec"]
    )
    assert [p.path for p in check_spec(spec)] == ["spec.monitoring.retrain.jobTemplate.spec.template"]


def test_examples_of_valid_specs_have_no_operator_side_problems() -> None:
    assert check_spec(parse_spec(manifest()["spec"])) == []


class TestLock:
    """The twin of the CEL transition rule: while stored and new spec are locked, nothing changes."""

    def locked(self) -> dict[str, Any]:
        return manifest(locked=True)

    def changed(self, document: dict[str, Any], **spec: Any) -> dict[str, Any]:
        new = copy.deepcopy(document)
        new["spec"].update(spec)
        return new

    def test_changing_a_locked_spec_is_refused_with_the_admission_message(self) -> None:
        old = self.locked()
        new = self.changed(old, model={"name": "fraud", "version": "3.3.0"})
        assert [str(p) for p in lint_manifest(new, old)] == [f"spec: Invalid value: {LOCKED_MESSAGE}"]

    def test_unlocking_is_allowed_even_with_other_changes(self) -> None:
        old = self.locked()
        assert lint_manifest(self.changed(old, locked=False, replicas=3), old) == []

    def test_dropping_the_locked_field_unlocks(self) -> None:
        old = self.locked()
        new = copy.deepcopy(old)
        del new["spec"]["locked"]
        assert lint_manifest(new, old) == []

    def test_locking_an_unlocked_spec_may_change_it_at_the_same_time(self) -> None:
        old = manifest()
        assert lint_manifest(self.changed(old, locked=True, replicas=2), old) == []

    def test_reapplying_a_locked_spec_unchanged_is_allowed(self) -> None:
        old = self.locked()
        assert lint_manifest(copy.deepcopy(old), old) == []

    @pytest.mark.parametrize("change", [{"replicas": 1}, {"paused": False}])
    def test_writing_out_a_default_counts_as_a_change_as_it_does_in_cel(self, change: dict[str, Any]) -> None:
        old = self.locked()
        new = parse_spec(self.changed(old, **change)["spec"])
        assert [p.message for p in check_update(parse_spec(old["spec"]), new)] == [
            f"Invalid value: {LOCKED_MESSAGE}"
        ]
