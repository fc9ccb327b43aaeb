"""Fuzzing: whatever a user (or a broken tool) applies, validation answers with problems, never a crash.

Manifests are generated two ways: the commented examples with random
mutations (a value replaced by one of the wrong type or an odd string, a field
removed, an unknown field added), which reach deep into valid structure, and
free-form trees shaped like a ModelDeployment. Each goes through
``parse_manifest``, ``lint_manifest`` (also as an update of another manifest)
and the planner, which must never raise: an invalid spec is phase Invalid
with no serving object touched, and a valid one is never called Invalid.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypothesis_profiles import examples
from kubetest import EXAMPLES
from modeldeploy.api import InvalidManifestError, check_spec, lint_manifest, parse_manifest, parse_spec
from modeldeploy.plan.inputs import Observed, RevisionState, Subject
from modeldeploy.plan.outputs import ObjectRef
from modeldeploy.plan.planner import plan

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
BASES = [yaml.safe_load(path.read_text()) for path in sorted(EXAMPLES.glob("*.yaml"))]

ODD_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-1",
        "1e309",
        "NaN",
        "inf",
        "5m",
        "-5m",
        "0s",
        "1h30m",
        "10000000000000h",
        "100%",
        "{{revision}}",
        "{{nope}}",
        '"}) or vector(1) #',
        "${HOME}",
        "\x00",
        "Ünïcødé-💥",
        "a" * 300,
        "UPPER_case.name",
        "gatewayAPI",
        "istio",
        "service",
        "Hold",
        "Rollback",
        "PreviousRevision",
        "Model",
        "Response",
        "null",
        "true",
        "s3://models/x",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    ODD_STRINGS,
    st.text(max_size=12),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_NAMES = st.sampled_from(
    [
        "model",
        "runtime",
        "replicas",
        "traffic",
        "strategy",
        "analysis",
        "fallback",
        "monitoring",
        "revisionHistoryLimit",
        "progressDeadline",
        "paused",
        "locked",
        "retired",
        "canary",
        "steps",
        "weight",
        "pause",
        "blueGreen",
        "shadow",
        "percent",
        "duration",
        "warmup",
        "metrics",
        "query",
        "max",
        "min",
        "interval",
        "router",
        "gatewayAPI",
        "parentRefs",
        "version",
        "image",
        "port",
        "unknownField",
    ]
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON tree (dict keys and list indexes), the root excluded."""
    found: list[tuple[Any, ...]] = []
    items: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    for key, child in items:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


def mutate(tree: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """One to four random mutations of a copy of tree."""
    tree = copy.deepcopy(tree)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        where = data.draw(st.sampled_from(paths(tree)), label="path")
        parent: Any = tree
        for key in where[:-1]:
            parent = parent[key]
        key = where[-1]
        action = data.draw(st.sampled_from(["replace", "delete", "add", "nest"]), label="action")
        if action == "replace":
            parent[key] = data.draw(JSON, label="value")
        elif action == "delete":
            del parent[key]
        elif action == "add" and isinstance(parent[key], dict):
            parent[key][data.draw(FIELD_NAMES, label="field")] = data.draw(JSON, label="value")
        elif action == "nest":
            parent[key] = data.draw(st.sampled_from([[parent[key]], {"value": parent[key]}]), label="nest")
        if not isinstance(tree.get("spec"), dict):
            break
    return tree


def spec_shaped() -> st.SearchStrategy[dict[str, Any]]:
    """Free-form objects with a ModelDeployment's top-level shape and anything below it."""
    spec = st.dictionaries(FIELD_NAMES, JSON, max_size=8)
    return st.fixed_dictionaries(
        {
            "apiVersion": st.sampled_from(["modeldeploy.io/v1alpha1", "v1", ""]),
            "kind": st.sampled_from(["ModelDeployment", "Deployment"]),
            "metadata": st.fixed_dictionaries({"name": st.sampled_from(["fraud", "", "UPPER", "a" * 300])}),
            "spec": spec,
        }
    )


def observed_nothing() -> Observed:
    return Observed(revisions={}, fallback=None, jobs={}, stable_service_revision=None, children=())


def observed_serving(name: str = "fraud-1-0-0-abcde") -> Observed:
    """A cluster where an earlier, valid spec left one Ready revision and its route."""
    return Observed(
        revisions={name: RevisionState(name=name, replicas=2, ready=2, updated=2, available=2)},
        fallback=None,
        jobs={},
        stable_service_revision=name,
        children=(
            ObjectRef("apps/v1", "Deployment", "risk", name),
            ObjectRef("v1", "Service", "risk", "fraud"),
            ObjectRef("gateway.networking.k8s.io/v1", "HTTPRoute", "risk", "fraud"),
        ),
    )


def check_everything(manifest: dict[str, Any], old: dict[str, Any], status: Any) -> None:
    try:
        parse_manifest(manifest)
    except InvalidManifestError as error:
        assert error.problems, "an InvalidManifestError must say what is wrong"
    problems = lint_manifest(manifest)
    assert all(str(p) for p in problems)
    lint_manifest(manifest, old=old)
    lint_manifest(old, old=manifest)

    spec = manifest.get("spec")
    if not isinstance(spec, dict):
        return  # the API server's schema admits only an object here; the planner never sees anything else
    try:
        invalid = bool(check_spec(parse_spec(spec)))
    except InvalidManifestError:
        invalid = True
    for observed in (observed_nothing(), observed_serving()):
        subject = Subject(
            name="fraud",
            namespace="risk",
            uid="u",
            generation=3,
            spec=spec,
            status=status if isinstance(status, dict) else {},
            finalizers=("modeldeploy.io/cleanup",),
        )
        decided = plan(subject, observed, NOW)
        assert decided.status is not None
        if invalid:
            assert decided.status["phase"] == "Invalid", decided.status
            assert (decided.apply, decided.scale, decided.delete) == ((), (), ())
        else:
            assert decided.status["phase"] != "Invalid", decided.status


FUZZ = settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=st.data(), base=st.sampled_from(BASES), status=st.one_of(st.just({}), JSON))
def test_mutated_examples_give_problems_or_plans_never_exceptions(
    data: st.DataObject, base: dict[str, Any], status: Any
) -> None:
    check_everything(mutate(base, data), base, status)


@FUZZ
@given(manifest=spec_shaped(), old=st.sampled_from(BASES))
def test_free_form_manifests_give_problems_or_plans_never_exceptions(
    manifest: dict[str, Any], old: dict[str, Any]
) -> None:
    check_everything(manifest, old, {})


@settings(max_examples=examples(100), deadline=None)
@given(data=st.data(), base=st.sampled_from(BASES))
def test_a_spec_made_invalid_over_a_serving_revision_changes_no_serving_object(
    data: st.DataObject, base: dict[str, Any]
) -> None:
    """The InvalidSpec promise of the README: traffic stays where it was."""
    manifest = mutate(base, data)
    spec = manifest.get("spec")
    if not isinstance(spec, dict):
        return
    try:
        invalid = bool(check_spec(parse_spec(spec)))
    except InvalidManifestError:
        invalid = True
    if invalid:
        subject = Subject("fraud", "risk", "u", 4, spec, {}, finalizers=("modeldeploy.io/cleanup",))
        decided = plan(subject, observed_serving(), NOW)
        assert decided.apply == () and decided.delete == () and decided.scale == ()
        assert [e.reason for e in decided.events] == ["InvalidSpec"]
