"""The chart's admission policies and NetworkPolicy: generated, fresh, and shaped by the admin's values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helm_chart import NAMESPACE, RELEASE, find, one, render

from modeldeploy.api.admission import protected_status_fields, render_policies

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "charts" / "modeldeploy" / "templates" / "admission-policies.yaml"


def test_committed_admission_policies_are_up_to_date() -> None:
    assert COMMITTED.read_text() == render_policies(), (
        "charts/modeldeploy/templates/admission-policies.yaml is stale: run `make crds`"
    )


def test_every_status_field_but_action_is_protected() -> None:
    fields = protected_status_fields()
    assert "action" not in fields
    assert {"stable", "candidate", "history", "operatorState", "conditions"} <= set(fields)


def test_the_policies_exempt_only_the_operator_and_cluster_admins() -> None:
    docs = render()
    for name in ("templates", "status"):
        policy = one(docs, "ValidatingAdmissionPolicy", f"{RELEASE}-modeldeploy-{name}")
        condition = policy["spec"]["matchConditions"][0]["expression"]
        assert f"'system:serviceaccount:{NAMESPACE}:{RELEASE}-modeldeploy'" in condition
        assert "'system:masters' in request.userInfo.groups" in condition
        binding = one(docs, "ValidatingAdmissionPolicyBinding", policy["metadata"]["name"])
        assert binding["spec"]["validationActions"] == ["Deny"]


def test_host_privileged_and_capability_checks_follow_the_values() -> None:
    strict = _validations(render())
    assert any("hostPID" in e for e in strict) and any("hostPath" in e for e in strict)
    assert any("privileged" in e for e in strict) and any("capabilities.add" in e for e in strict)
    loose = _validations(
        render(
            "--set",
            "admissionPolicies.allowHostNamespaces=true,admissionPolicies.allowHostPath=true,"
            "admissionPolicies.allowPrivileged=true,admissionPolicies.allowAddedCapabilities=true",
        )
    )
    assert len(loose) == 2 and all("authorizer" in e for e in loose)


def _validations(docs: list[dict[str, Any]]) -> list[str]:
    policy = one(docs, "ValidatingAdmissionPolicy", f"{RELEASE}-modeldeploy-templates")
    return [v["expression"] for v in policy["spec"]["validations"]]


def test_the_policies_can_be_turned_off() -> None:
    docs = render("--set", "admissionPolicies.enabled=false")
    assert not find(docs, "ValidatingAdmissionPolicy") and not find(docs, "ValidatingAdmissionPolicyBinding")


def test_the_network_policy_allows_the_egress_cidrs_and_never_link_local_by_name() -> None:
    default = one(render(), "NetworkPolicy")
    cidrs = [b["ipBlock"]["cidr"] for b in default["spec"]["egress"][2]["to"]]
    assert cidrs == ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
    named = one(render("--set", "egress.allow={203.0.113.0/24,hooks.acme.io}"), "NetworkPolicy")
    blocks = [b["ipBlock"] for b in named["spec"]["egress"][2]["to"]]
    assert {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16", "127.0.0.0/8"]} in blocks


def test_the_network_policy_lets_the_operator_ask_the_cluster_dns_whatever_egress_allows() -> None:
    """Warm-ups name Services (``{service}.{namespace}.svc``): the pod must reach its cluster DNS,
    wherever that runs (a kube-dns Service, or a node address as on the local real node)."""
    for values in ((), ("--set", "egress.allow={10.250.0.1/32,10.96.0.0/16}")):
        policy = one(render(*values), "NetworkPolicy")
        assert "Egress" in policy["spec"]["policyTypes"]
        dns = [
            rule
            for rule in policy["spec"]["egress"]
            if {"port": 53, "protocol": "UDP"} in rule.get("ports", [])
        ]
        assert dns == [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}], values
