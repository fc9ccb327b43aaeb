"""CEL rules and their Python twins agree: the same verdicts, the same messages."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from modeldeploy.api import InvalidManifestError, ModelDeploymentSpec, parse_spec
from modeldeploy.api.base import ApiModel
from modeldeploy.api.crd import render_crd
from modeldeploy.api.rules import object_rules, transition_rules


def cel_steps_rule(weights: list[int]) -> bool:
    """The CEL rule on spec.strategy.canary, read literally: sorted, and every weight occurs once."""
    return weights == sorted(weights) and all(weights.count(w) == 1 for w in weights)


@given(st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=20))
def test_canary_weight_twin_agrees_with_the_cel_expression(weights: list[int]) -> None:
    raw: dict[str, Any] = {
        "model": {"name": "m", "version": "1"},
        "runtime": {"image": "i"},
        "strategy": {"canary": {"steps": [{"weight": w} for w in weights]}},
    }
    try:
        parse_spec(raw)
        accepted = True
    except InvalidManifestError:
        accepted = False
    assert accepted == cel_steps_rule(weights)


def crd_rules(node: dict[str, Any]) -> list[dict[str, str]]:
    found = list(node.get("x-kubernetes-validations", []))
    for child in [*node.get("properties", {}).values(), node.get("items"), node.get("additionalProperties")]:
        if isinstance(child, dict):
            found += crd_rules(child)
    return found


def test_every_python_twin_has_its_rule_in_the_crd() -> None:
    schema = render_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    in_crd = {entry["rule"] for entry in crd_rules(schema)}
    twins = [
        rule.rule for model in all_models() for rule, _ in [*object_rules(model), *transition_rules(model)]
    ]
    assert len(twins) > 20
    assert set(twins) <= in_crd


def all_models(base: type[ApiModel] = ApiModel) -> list[type[ApiModel]]:
    found = []
    for model in base.__subclasses__():
        found += [model, *all_models(model)]
    return found


def test_the_lock_is_a_transition_rule_on_spec() -> None:
    rules = [rule for rule, _ in transition_rules(ModelDeploymentSpec)]
    assert len(rules) == 1 and "oldSelf" in rules[0].rule
    spec_schema = render_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert rules[0].schema_entry() in spec_schema["x-kubernetes-validations"]
