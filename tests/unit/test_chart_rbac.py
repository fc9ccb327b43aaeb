"""The operator's RBAC, rule by rule: what it needs, cluster-wide or per namespace, and nothing more."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from helm_chart import NAMESPACE, NAMESPACED, RELEASE, find, one, render

from modeldeploy.providers import OperatorConfig

SA = f"{RELEASE}-modeldeploy"
EVERYWHERE = {"get", "list", "watch", "create", "patch", "update", "delete"}

# What the operator needs in each namespace it serves.
NAMESPACED_RULES = {
    ("modeldeploy.io", "modeldeployments"): {"get", "list", "watch", "patch", "update"},
    ("modeldeploy.io", "modeldeployments/status"): {"get", "patch", "update"},
    ("modeldeploy.io", "modeldeployments/finalizers"): {"update"},
    ("apps", "deployments"): EVERYWHERE,
    ("apps", "replicasets"): {"get", "list", "watch"},
    ("", "services"): EVERYWHERE,
    ("gateway.networking.k8s.io", "httproutes"): EVERYWHERE,
    ("networking.istio.io", "virtualservices"): EVERYWHERE,
    ("autoscaling", "horizontalpodautoscalers"): EVERYWHERE,
    ("batch", "jobs"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "configmaps"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "events"): {"create", "patch"},
}
CRDS = {("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"}}
NAMESPACES = {("", "namespaces"): {"list", "watch"}}
CLUSTER_PEERING = {("kopf.dev", "clusterkopfpeerings"): {"get", "list", "watch", "patch"}}
NAMESPACED_PEERING = {("kopf.dev", "kopfpeerings"): {"get", "list", "watch", "patch"}}


def rules(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """A role's rules as {(group, resource): verbs}, refusing anything that would hide a grant."""
    table: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no resourceNames/nonResourceURLs
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert (group, resource) not in table, f"{group}/{resource} granted twice"
                table[(group, resource)] = set(rule["verbs"])
    return table


def bound_roles(docs: list[dict[str, Any]]) -> dict[tuple[str, str | None], dict[str, Any]]:
    """{(kind, namespace): role} for every role bound to the operator's ServiceAccount."""
    roles: dict[tuple[str, str | None], dict[str, Any]] = {}
    for binding in find(docs, "ClusterRoleBinding") + find(docs, "RoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SA, "namespace": NAMESPACE}]
        namespace = binding["metadata"].get("namespace")
        [role] = [
            r
            for r in find(docs, binding["roleRef"]["kind"], binding["roleRef"]["name"])
            if r["metadata"].get("namespace") == namespace
        ]
        roles[(role["kind"], namespace)] = role
    return roles


def test_cluster_wide_one_cluster_role_holds_every_rule() -> None:
    roles = bound_roles(render())
    assert list(roles) == [("ClusterRole", None)]
    assert rules(roles[("ClusterRole", None)]) == NAMESPACED_RULES | CRDS


def test_namespaced_mode_grants_the_rules_in_each_namespace_and_only_discovery_cluster_wide() -> None:
    roles = bound_roles(render(*NAMESPACED))
    assert set(roles) == {("ClusterRole", None), ("Role", "a"), ("Role", "b")}
    assert rules(roles[("ClusterRole", None)]) == CRDS | NAMESPACES
    assert rules(roles[("Role", "a")]) == rules(roles[("Role", "b")]) == NAMESPACED_RULES


def test_peering_adds_the_cluster_peering_in_cluster_wide_mode() -> None:
    docs = render("--set", "peering.enabled=true")
    assert rules(bound_roles(docs)[("ClusterRole", None)]) == NAMESPACED_RULES | CRDS | CLUSTER_PEERING
    assert one(docs, "ClusterKopfPeering")["metadata"]["name"] == SA


def test_peering_adds_a_peering_per_namespace_in_namespaced_mode() -> None:
    docs = render(*NAMESPACED, "--set", "peering.enabled=true,peering.name=models")
    roles = bound_roles(docs)
    assert rules(roles[("ClusterRole", None)]) == CRDS | NAMESPACES
    assert rules(roles[("Role", "a")]) == NAMESPACED_RULES | NAMESPACED_PEERING
    peerings = find(docs, "KopfPeering")
    assert {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in peerings} == {
        ("a", "models"),
        ("b", "models"),
    }
    assert not find(docs, "ClusterKopfPeering")


def test_no_secret_is_readable_outside_the_operator_namespace_by_default() -> None:
    for role in bound_roles(render()).values():
        assert ("", "secrets") not in rules(role)
    for role in bound_roles(render(*NAMESPACED)).values():
        assert ("", "secrets") not in rules(role)


def test_inline_provider_tokens_need_read_secrets_which_grants_get_only() -> None:
    table = rules(bound_roles(render("--set", "rbac.readSecrets=true"))[("ClusterRole", None)])
    assert table[("", "secrets")] == {"get"}


def test_provider_secrets_are_readable_by_name_in_the_operator_namespace_only() -> None:
    docs = render(
        "--set",
        "metricProviders[0].name=mimir,metricProviders[0].address=http://mimir:8080,"
        "metricProviders[0].bearerTokenSecretRef.name=mimir-token,metricProviders[0].bearerTokenSecretRef.key=t",
    )
    role = one(docs, "Role", f"{RELEASE}-modeldeploy-provider-secrets")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["mimir-token"], "verbs": ["get"]}
    ]
    binding = one(docs, "RoleBinding", f"{RELEASE}-modeldeploy-provider-secrets")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SA, "namespace": NAMESPACE}]
    assert not find(render(), "Role", f"{RELEASE}-modeldeploy-provider-secrets")


@pytest.mark.parametrize("args", [(), NAMESPACED], ids=["cluster-wide", "namespaced"])
def test_no_wildcards_no_secret_listing_no_pods_nodes_or_rbac(args: tuple[str, ...]) -> None:
    for role in bound_roles(render(*args)).values():
        for (group, resource), verbs in rules(role).items():
            assert "*" not in (group, resource) and "*" not in verbs
            assert resource not in {"pods", "nodes", "serviceaccounts", "roles", "rolebindings"}
            assert group != "rbac.authorization.k8s.io"
            assert not (resource == "secrets" and verbs - {"get"})
            assert "escalate" not in verbs and "bind" not in verbs and "impersonate" not in verbs


@pytest.mark.parametrize("args", [(), NAMESPACED], ids=["cluster-wide", "namespaced"])
def test_cluster_scoped_objects_are_named_after_the_release(args: tuple[str, ...]) -> None:
    for doc in render(*args, "--set", "peering.enabled=true"):
        if doc["kind"] in {"ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering"}:
            assert doc["metadata"]["name"].startswith(f"{RELEASE}-modeldeploy"), doc["metadata"]["name"]


def test_people_with_edit_may_manage_model_deployments_and_request_actions() -> None:
    edit = one(render(), "ClusterRole", f"{RELEASE}-modeldeploy-aggregate-to-edit")
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert rules(edit)[("modeldeploy.io", "modeldeployments/status")] == {"get", "patch"}
    view = one(render(), "ClusterRole", f"{RELEASE}-modeldeploy-aggregate-to-view")
    assert all(verbs == {"get", "list", "watch"} for verbs in rules(view).values())


def test_rbac_can_be_left_to_someone_else() -> None:
    kinds = {d["kind"] for d in render("--set", "rbac.create=false")}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def test_registry_providers_reach_the_config_and_their_secrets_are_readable_by_name() -> None:
    docs = render(
        "--set",
        "registryProviders[0].name=mlflow,registryProviders[0].address=http://mlflow:5000,"
        "registryProviders[0].bearerTokenSecretRef.name=mlflow-token,"
        "registryProviders[0].bearerTokenSecretRef.key=t,clusterName=prod-eu-1",
    )
    role = one(docs, "Role", f"{RELEASE}-modeldeploy-provider-secrets")
    assert role["rules"][0]["resourceNames"] == ["mlflow-token"]
    config = yaml.safe_load(one(docs, "ConfigMap", f"{RELEASE}-modeldeploy-config")["data"]["config.yaml"])
    assert config["clusterName"] == "prod-eu-1"
    assert OperatorConfig.model_validate(config).registry("mlflow", "any").address == "http://mlflow:5000"  # type: ignore[union-attr]
