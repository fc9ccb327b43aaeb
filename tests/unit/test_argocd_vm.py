"""argocd-lua (tests/argocd_vm.py) is Argo CD's own Lua machinery at the pinned release, and behaves as it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from argocd_vm import ArgoCD, ArgoCDError, argocd_lua_binary, argocd_patches
from modeldeploy_dev.binaries import ARGOCD_VERSION

SAMPLE: dict[str, Any] = {
    "apiVersion": "modeldeploy.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "x", "generation": 7},
    "spec": {"items": ["a", "b"]},
    "status": {"phase": "Stable"},
}


def probe(argo: ArgoCD, expression: str, obj: dict[str, Any] = SAMPLE) -> Any:
    """The value of a Lua expression inside Argo CD's VM (carried out in an action's returned object)."""
    returned = argo.script("action", f"obj.probe = {expression}\nreturn obj", obj)
    return returned[0]["resource"]["probe"]


@pytest.fixture(scope="module")
def argo() -> ArgoCD:
    argocd_lua_binary()
    return ArgoCD()


def test_the_binary_embeds_the_pinned_argocd_release() -> None:
    out = subprocess.run([argocd_lua_binary(), "--version"], capture_output=True, text=True, check=True)
    assert ARGOCD_VERSION in out.stdout


def test_it_is_lua_5_1_without_string_math_io_debug_or_a_global_os(argo: ArgoCD) -> None:
    names = "{_VERSION, type(string), type(math), type(io), type(debug), type(os)}"
    assert probe(argo, names) == ["Lua 5.1", "nil", "nil", "nil", "nil", "nil"]


def test_strings_have_no_methods(argo: ArgoCD) -> None:
    with pytest.raises(ArgoCDError):
        probe(argo, '("abc"):upper()')


def test_the_safe_os_is_reached_through_require(argo: ArgoCD) -> None:
    script = 'local os = require("os"); obj.probe = {type(os.date), type(os.time), type(os.exit)}; return obj'
    assert argo.script("action", script, SAMPLE)[0]["resource"]["probe"] == ["function", "function", "nil"]


def test_the_object_is_the_global_obj_with_whole_numbers_as_numbers(argo: ArgoCD) -> None:
    expression = "{obj.metadata.name, obj.spec.items[2], #obj.spec.items, obj.metadata.generation + 1}"
    assert probe(argo, expression) == ["x", "b", 2, 8]


def test_a_script_that_runs_too_long_is_stopped(argo: ArgoCD) -> None:
    with pytest.raises(ArgoCDError, match="context deadline exceeded"):
        argo.script("health", "while true do end", SAMPLE)


def test_an_error_reaches_the_user_without_a_stack_trace(argo: ArgoCD) -> None:
    with pytest.raises(ArgoCDError) as raised:
        argo.script("action", 'error("nothing to do", 0)', SAMPLE)
    assert str(raised.value) == "nothing to do"


def test_a_health_status_argocd_does_not_know_is_unknown(argo: ArgoCD) -> None:
    assert argo.script("health", 'return {status = "Fine"}', SAMPLE)["status"] == "Unknown"


def test_an_empty_object_returned_as_an_empty_table_is_read_back_as_an_object(argo: ArgoCD) -> None:
    live = {**SAMPLE, "metadata": {"name": "x", "annotations": {}}}
    assert argo.script("action", "return obj", live)[0]["resource"] == live


def test_an_unchanged_object_makes_no_patch_at_all() -> None:
    assert argocd_patches(SAMPLE, SAMPLE) == (None, None)


def test_a_change_to_status_alone_goes_only_to_the_status_subresource() -> None:
    changed = {**SAMPLE, "status": {"phase": "Stable", "action": {"type": "Promote"}}}
    assert argocd_patches(SAMPLE, changed) == ({"status": {"action": {"type": "Promote"}}}, None)


def test_a_change_to_spec_goes_to_the_main_resource() -> None:
    changed = {**SAMPLE, "spec": {"items": ["a"]}, "status": {"phase": "Paused"}}
    assert argocd_patches(SAMPLE, changed) == ({"status": {"phase": "Paused"}}, {"spec": {"items": ["a"]}})


def test_scripts_are_found_by_group_and_kind_as_argocd_finds_them(argo: ArgoCD) -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}
    with pytest.raises(ArgoCDError, match="no resource customization for apps/Deployment"):
        argo.health(deployment)


def test_a_customization_type_argocd_does_not_support_is_refused(tmp_path: Path) -> None:
    configmap = tmp_path / "argocd-cm.yaml"
    configmap.write_text("data:\n  resource.customizations.healthz.modeldeploy.io_ModelDeployment: x\n")
    with pytest.raises(ArgoCDError, match="resource customization type healthz not supported"):
        ArgoCD(configmap).health(SAMPLE)


def test_an_action_argocd_was_not_told_about_is_refused(argo: ArgoCD) -> None:
    with pytest.raises(ArgoCDError, match=r'defines no action "scale" for modeldeploy\.io/ModelDeployment'):
        argo.act("scale", SAMPLE)
