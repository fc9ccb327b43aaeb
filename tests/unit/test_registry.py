"""spec.model.registry: the API's checks, the admin's registry providers, and the planner's use of the answer.

The planner tests drive the pure planner (tests/unit/planner_world.py) with
the registry's answers as inputs; the MLflow client's own tests are in
tests/unit/test_registry_client.py, and tests/integration/test_registry_mlflow.py
runs all of it against a real ``mlflow server``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from planner_world import World, spec

from modeldeploy.api import InvalidManifestError, RegistryCard, parse_spec
from modeldeploy.cli.tables import card_table
from modeldeploy.plan.inputs import Inputs, RegistryRead, Subject
from modeldeploy.plan.revisions import revision_name, revision_source
from modeldeploy.providers import ConfigError, OperatorConfig, load_config
from modeldeploy.reconcile.measure import Measurer

pytestmark = pytest.mark.unit

CARD = RegistryCard(description="fraud v3", run_id="abc", metrics={"auc": "0.93"}, source="models:/m-1")


def registry_spec(**ref: Any) -> dict[str, Any]:
    result = spec()
    model = {"name": "fraud-detector", "registry": {"provider": "mlflow", "model": "fraud", **ref}}
    return {**result, "model": model}


def read(version: str, uri: str | None = None) -> Inputs:
    card = CARD.model_copy(update={"run_id": f"run{version}", "metrics": {"auc": f"0.9{version}"}})
    return Inputs(registry=RegistryRead(version=version, uri=uri or f"file:///a/{version}", card=card))


def unreachable() -> Inputs:
    return Inputs(registry=RegistryRead(reason="Unreachable", error="cannot reach the registry: timeout"))


def problems(raw: dict[str, Any]) -> str:
    with pytest.raises(InvalidManifestError) as error:
        parse_spec(raw)
    return str(error.value)


# --- the API -------------------------------------------------------------------------


def test_a_registry_reference_takes_exactly_one_of_version_and_alias() -> None:
    assert parse_spec(registry_spec(alias="challenger")).model.registry.alias == "challenger"  # type: ignore[union-attr]
    assert parse_spec(registry_spec(version="3")).model.registry.version == "3"  # type: ignore[union-attr]
    assert "spec.model.registry: set exactly one of version and alias" in problems(registry_spec())
    assert "set exactly one of version and alias" in problems(registry_spec(version="3", alias="x"))


def test_a_model_takes_a_version_or_a_registry_not_both() -> None:
    both = registry_spec(alias="challenger")
    both["model"]["version"] = "3"
    assert "spec.model: set version, or registry" in problems(both)
    neither = spec()
    del neither["model"]["version"]
    assert "spec.model: set version, or registry" in problems(neither)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", "../other"),
        ("model", "x" * 257),
        ("model", "a b"),
        ("alias", "no spaces"),
        ("alias", "a" * 64),
        ("version", "01"),
        ("version", "3.2"),
        ("provider", "Not_A_Label"),
    ],
)
def test_registry_names_are_names_of_bounded_length(field: str, value: str) -> None:
    ref: dict[str, Any] = {"alias": "challenger", field: value}
    if field == "version":
        ref = {"version": value}
    raw = registry_spec(**ref)
    if field == "provider":
        raw["model"]["registry"]["provider"] = value
    assert f"spec.model.registry.{field}" in problems(raw)


# --- the admin's providers -------------------------------------------------------------

CONFIG = """
clusterName: prod-eu-1
registryProviders:
- name: mlflow
  address: http://mlflow.ml:5000
  namespaces: [risk]
  pollInterval: 15s
- name: everyone
  address: https://mlflow.shared:443
"""


def test_a_registry_provider_serves_only_its_namespaces(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    config = load_config(str(path))
    assert config.registry("mlflow", "risk").poll_seconds == 15  # type: ignore[union-attr]
    assert config.registry("mlflow", "team-a") is None
    assert config.registry("everyone", "team-a").promotion_alias == "production"  # type: ignore[union-attr]
    assert config.registry("nope", "risk") is None
    assert config.cluster_name == "prod-eu-1"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("registryProviders: [{name: a, address: ftp://x}]", "address"),
        ("registryProviders: [{name: a, address: http://x, pollInterval: 0s}]", "pollInterval"),
        ("registryProviders: [{name: a, address: http://x}, {name: a, address: http://y}]", "unique"),
        ("registryProviders: [{name: a, address: http://x, promotionAlias: 'a b'}]", "promotionAlias"),
    ],
)
def test_a_bad_registry_provider_is_refused_naming_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=field):
        load_config(str(path))


def test_a_provider_the_namespace_may_not_use_is_refused_without_a_call() -> None:
    config = OperatorConfig.model_validate({"registryProviders": [{"name": "mlflow", "address": "http://x"}]})
    config = config.model_copy(
        update={
            "registry_providers": (config.registry_providers[0].model_copy(update={"namespaces": ("a",)}),)
        }
    )
    measurer = Measurer(client=None, config=config, outbound=None, service_url_template="")  # type: ignore[arg-type]
    body = {"metadata": {"name": "fraud", "namespace": "risk"}, "spec": registry_spec(alias="challenger")}
    inputs = measurer.inputs(Subject.from_body(body), World(spec={}).now)
    assert inputs.registry is not None and inputs.registry.reason == "ProviderRefused"
    assert "spec.model.registry.provider: 'mlflow' is not a registry provider offered to namespace risk" in (
        inputs.registry.error or ""
    )


def test_a_refused_provider_shows_as_a_condition_and_an_event() -> None:
    world = World(spec=registry_spec(alias="challenger"))
    refused = Inputs(
        registry=RegistryRead(reason="ProviderRefused", error="spec.model.registry.provider: no")
    )
    decided = world.reconcile(inputs=refused)
    condition = next(c for c in world.status["conditions"] if c["type"] == "RegistryReachable")
    assert (condition["status"], condition["reason"]) == ("False", "ProviderRefused")
    assert "spec.model.registry.provider: no" in condition["message"]
    assert [e.reason for e in decided.events] == ["RegistryProviderRefused"]
    assert not decided.apply and not world.deployments


# --- the planner -----------------------------------------------------------------------


def test_a_resolved_alias_makes_the_revision_a_pinned_version_would() -> None:
    world = World(spec=registry_spec(alias="challenger"))
    world.reconcile(inputs=read("3", "file:///a/3"))
    pinned = spec()
    pinned["model"] = {"name": "fraud-detector", "version": "3", "uri": "file:///a/3"}
    parsed = parse_spec(pinned)
    expected = revision_name("fraud", revision_source(parsed.model, parsed.runtime))
    assert list(world.deployments) == [expected]
    registry = world.status["registry"]
    assert (registry["version"], registry["uri"], registry["alias"]) == ("3", "file:///a/3", "challenger")
    assert registry["card"]["metrics"] == {"auc": "0.93"} and registry["card"]["runId"] == "run3"
    deployment = next(o for o in world.log[-1].apply if o["kind"] == "Deployment")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["MODEL_VERSION"], env["MODEL_URI"]) == ("3", "file:///a/3")


def test_before_any_answer_nothing_is_rolled_out() -> None:
    world = World(spec=registry_spec(alias="challenger"))
    decided = world.reconcile(inputs=unreachable())
    assert not decided.apply and not world.deployments
    assert world.status["phase"] == "Pending"
    assert "waiting for the registry to resolve fraud@challenger" in world.status["message"]
    condition = next(c for c in world.status["conditions"] if c["type"] == "RegistryReachable")
    assert (condition["status"], condition["reason"]) == ("False", "Unreachable")
    assert "nothing is rolled out until it answers" in condition["message"]


def _stable_on(version: str) -> World:
    world = World(spec=registry_spec(alias="challenger"))
    world.reconcile(inputs=read(version))
    world.ready_all()
    world.settle()
    world.ready_all()
    world.settle()
    assert world.status["phase"] == "Stable" and world.status["stable"]["version"] == version
    return world


def test_an_alias_move_starts_a_rollout_without_a_spec_edit() -> None:
    world = _stable_on("1")
    generation = world.generation
    decided = world.reconcile(inputs=read("2"))
    assert world.generation == generation
    assert world.status["candidate"]["version"] == "2"
    assert "RegistryVersionChanged" in [e.reason for e in decided.events]
    world.ready_all()
    world.settle()
    world.ready_all()
    world.settle()
    assert world.status["stable"]["version"] == "2"
    assert [(h["version"], h["outcome"]) for h in world.status["history"]][-1] == ("2", "Promoted")


def test_an_unreachable_registry_changes_nothing_and_says_so() -> None:
    world = _stable_on("1")

    def state() -> Any:
        return (
            dict(world.deployments),
            dict(world.services),
            dict(world.route_objects),
            world.status["stable"],
            world.status["traffic"],
            world.status["registry"],
        )

    before = state()
    decided = world.reconcile(inputs=unreachable())
    assert not decided.delete and not decided.scale
    assert state() == before
    condition = next(c for c in world.status["conditions"] if c["type"] == "RegistryReachable")
    assert (condition["status"], condition["reason"]) == ("False", "Unreachable")
    assert "version 1 stays" in condition["message"]
    assert [e.reason for e in decided.events] == ["RegistryUnreachable"]
    again = world.reconcile(inputs=unreachable())
    assert again.events == () and again.status == decided.status  # no new Event, no new status
    back = world.reconcile(inputs=read("1"))
    condition = next(c for c in world.status["conditions"] if c["type"] == "RegistryReachable")
    assert condition["status"] == "True" and state() == before and not back.delete


def test_a_registry_answer_at_rest_writes_nothing() -> None:
    world = _stable_on("1")
    status = world.status
    world.reconcile(inputs=read("1"))
    assert world.status == status


def test_a_pinned_registry_version_needs_the_same_version_back() -> None:
    world = World(spec=registry_spec(version="4"))
    world.reconcile(inputs=read("5"))
    assert not world.deployments
    world.reconcile(inputs=read("4"))
    assert world.status["registry"]["version"] == "4" and len(world.deployments) == 1


def test_a_written_uri_wins_over_the_registrys() -> None:
    raw = registry_spec(alias="challenger")
    raw["model"]["uri"] = "s3://mine/3"
    world = World(spec=raw)
    world.reconcile(inputs=read("3", "file:///theirs"))
    deployment = next(o for o in world.log[-1].apply if o["kind"] == "Deployment")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_URI"] == "s3://mine/3"


def test_write_back_progress_is_recorded_and_failures_are_kept_as_the_error() -> None:
    world = _stable_on("1")
    assert world.status["registry"].get("reportedUntil") is None  # the first promotion is still to report
    promoted = world.status["history"][-1]["at"]
    failed = Inputs(registry=RegistryRead(reason="", write_error="cannot reach the registry: timeout"))
    decided = world.reconcile(inputs=failed)
    assert world.status["registry"]["writeError"] == "cannot reach the registry: timeout"
    assert [e.reason for e in decided.events] == ["RegistryWriteFailed"]
    done = Inputs(registry=RegistryRead(reason="", reported_until=_at(promoted)))
    world.reconcile(inputs=done)
    assert world.status["registry"]["reportedUntil"] == promoted
    assert "writeError" not in world.status["registry"]


def _at(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_card_command_shows_the_registry_cards_of_stable_and_candidate_side_by_side() -> None:
    world = _stable_on("1")
    world.reconcile(inputs=read("2"))
    assert world.status["candidate"]["version"] == "2"
    assert set(world.status["registry"]["cards"]) == {"1"}
    rows = {
        line.split()[0]: line.split()[1:]
        for line in card_table({"spec": world.spec, "status": world.status}).splitlines()
    }
    assert rows["FIELD"] == ["STABLE", "CANDIDATE"]
    assert rows["version"] == ["1", "2"]
    assert rows["registry"] == ["mlflow:fraud@challenger", "mlflow:fraud@challenger"]
    assert rows["registry.source"] == ["models:/m-1", "models:/m-1"]
    assert rows["run"] == ["run1", "run2"] and rows["run.metrics.auc"] == ["0.91", "0.92"]
    world.ready_all()
    world.settle()
    world.ready_all()
    world.settle()
    assert world.status["stable"]["version"] == "2"
    world.reconcile()
    assert not world.status["registry"].get("cards")  # v1 serves no more: its card goes
