"""argocd/*.lua run by Argo CD's own Lua machinery, and the checks that it is Argo CD's.

``argocd-lua`` (``tools/go/argocd-lua``, built by ``make binaries``) embeds
the ``util/lua`` package of Argo CD at a pinned release: gopher-lua (Lua 5.1)
with the package, base and table libraries and Argo CD's safe ``os``, the live
object as the global ``obj`` (decoded as the API server's JSON is, whole
numbers as integers), action parameters as ``actionParams``, a one-second
limit, and Argo CD's own reading of a script's result (health status, the
discovered actions, an action's impacted resources with ``cleanReturnedObj``).
It reads the scripts from ``argocd/argocd-cm-patch.yaml`` through the keys
Argo CD reads, so what is tested is what a user installs.

After an action, Argo CD's API server computes a JSON merge patch from the
live object to the returned one and, when it touches ``status``, sends it to
the status subresource first and only the rest to the main resource
(``patchResource`` and ``splitStatusPatch`` in
``server/application/application.go``). That part is not in ``util/lua``:
:func:`argocd_patches` replays it, so the tests see what the API server would
receive.

The other ``test_argocd_*`` modules and tests/integration/test_argocd_live.py
use :class:`ArgoCD` from here.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from modeldeploy_dev.binaries import ARGOCD_VERSION, find_existing

ARGOCD = Path(__file__).resolve().parents[2] / "argocd"
CONFIGMAP = ARGOCD / "argocd-cm-patch.yaml"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "argocd"


@cache
def argocd_lua_binary() -> str:
    binary = find_existing("argocd-lua")
    if binary is None:
        pytest.skip("argocd-lua (Argo CD's util/lua) is not built yet: run `make binaries`")
    return str(binary)


class ArgoCDError(Exception):
    """A script failed; the message is the one Argo CD shows."""


class ArgoCD:
    """Runs argocd-lua on one object at a time; returns what Argo CD makes of the script's result."""

    def __init__(self, configmap: Path = CONFIGMAP) -> None:
        self.configmap = configmap

    def _run(self, args: list[str], obj: dict[str, Any]) -> Any:
        done = subprocess.run(
            [argocd_lua_binary(), *args, "-"],
            input=json.dumps(obj),
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode != 0:
            raise ArgoCDError(done.stderr.strip())
        return json.loads(done.stdout)

    def health(self, obj: dict[str, Any]) -> dict[str, str]:
        result = self._run(["health", "--argocd-cm", str(self.configmap)], obj)
        assert isinstance(result, dict) and set(result) <= {"status", "message"}, result
        return result

    def discover(self, obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The actions Argo CD lists, by name (disabled ones included, with disabled: true)."""
        result = self._run(["discover", "--argocd-cm", str(self.configmap)], obj)
        assert isinstance(result, list), result
        return {entry["name"]: {"disabled": False, **entry} for entry in result}

    def act(self, action: str, obj: dict[str, Any], **params: str) -> dict[str, Any]:
        """The object the action returns, as Argo CD reads it back (an old-style action: one patch)."""
        args = ["action", "--argocd-cm", str(self.configmap), "--action", action]
        for name, value in params.items():
            args += ["--param", f"{name}={value}"]
        impacted = self._run(args, obj)
        assert isinstance(impacted, list) and len(impacted) == 1, impacted
        assert impacted[0]["operation"] == "patch", impacted
        resource: dict[str, Any] = impacted[0]["resource"]
        return resource

    def script(self, mode: str, script: str, obj: dict[str, Any]) -> Any:
        """A bare script in health or action mode (to probe the machinery itself)."""
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as file:
            file.write(script)
            file.flush()
            return self._run([mode, "--script", file.name], obj)


def merge_patch(old: Any, new: Any) -> Any:
    """RFC 7386: the merge patch that turns old into new (what jsonpatch.CreateMergePatch computes)."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return new
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value)
    return patch


def argocd_patches(live: dict[str, Any], returned: dict[str, Any]) -> tuple[Any, Any]:
    """(status-subresource patch, main-resource patch) as Argo CD sends them; None where it sends none."""
    patch = merge_patch(live, returned)
    if patch == {}:
        return None, None
    if "status" not in patch:
        return None, patch
    rest = {k: v for k, v in patch.items() if k != "status"}
    return {"status": patch["status"]}, rest or None


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
