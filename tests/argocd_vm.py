"""argocd/*.lua run by Argo CD's own Lua machinery (unit/test_argocd_vm.py checks that it is Argo CD's).

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

The ``test_argocd_*`` modules and integration/test_argocd_live.py use
:class:`ArgoCD` from here.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from modeldeploy_dev.binaries import find_existing

ARGOCD = Path(__file__).resolve().parents[1] / "argocd"
CONFIGMAP = ARGOCD / "argocd-cm-patch.yaml"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "argocd"


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
