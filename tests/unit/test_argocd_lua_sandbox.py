"""A Lua sandbox that runs argocd/*.lua the way Argo CD does, and the checks that it is that strict.

Argo CD runs resource customizations from argocd-cm in gopher-lua (Lua 5.1)
with only the base, table and package libraries and a "safe" os that has
``time`` and ``date`` (``runLuaWithResourceActionParameters`` and
``oslib_safe.go`` in argoproj/argo-cd's ``util/lua``): no ``string``, no
``math``, and without the string library strings have no methods either. The
safe os is only reachable as ``require("os")``: Argo CD registers it under the
table library's name, so there is no global ``os``. The
live object is the global ``obj``. lupa's Lua 5.1 runtime is the same
language; the sandbox below takes away everything Argo CD does not open, so a
script that leans on ``string.format`` fails here as it would there.

After an action, Argo CD computes a JSON merge patch from the live object to
the returned one and, when the patch touches ``status``, sends it to the status
subresource first and only the rest to the main resource (``patchResource`` and
``splitStatusPatch`` in ``server/application/application.go``).
:func:`argocd_patches` does the same, so the tests see what the API server
would receive.

The other ``test_argocd_*`` modules import this one (pytest puts tests/unit
on ``sys.path``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lupa import lua51
from lupa.lua51 import LuaError

ARGOCD = Path(__file__).resolve().parents[2] / "argocd"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "argocd"

_SANDBOX = """
local real_G, real_os, real_table = _G, os, table
local loadstring, setfenv = loadstring, setfenv
local safe_os = {time = real_os.time, date = real_os.date}
local base = {
  "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "print", "rawequal",
  "rawget", "rawset", "select", "setmetatable", "tonumber", "tostring", "type", "unpack",
  "xpcall", "_VERSION",
}
-- Argo CD opens no string library, so strings have no metatable and no methods.
debug.setmetatable("", nil)
return function(script, obj)
  local env = {}
  for _, name in ipairs(base) do env[name] = real_G[name] end
  env.table = {}
  for name, fn in pairs(real_table) do env.table[name] = fn end
  -- Argo CD registers its safe os under the name of the table library, so the
  -- global `os` is missing and only require("os") reaches time and date.
  env.table.time, env.table.date = safe_os.time, safe_os.date
  env.require = function(name)
    if name == "os" then return safe_os end
    error("module '" .. tostring(name) .. "' not found", 2)
  end
  env._G = env
  env.obj = obj
  local chunk, problem = loadstring(script, "=script")
  if chunk == nil then error(problem, 0) end
  setfenv(chunk, env)
  return chunk()
end
"""


class ArgoCDLua:
    """Runs one script at a time against a JSON-like object, returning JSON-like values."""

    def __init__(self) -> None:
        self._lua = lua51.LuaRuntime(unpack_returned_tuples=False, register_eval=False)
        self._run = self._lua.execute(_SANDBOX)

    def run(self, script: str, obj: dict[str, Any]) -> Any:
        result = self._run(script, self._lua.table_from(obj, recursive=True))
        return _from_lua(result)

    def health(self, obj: dict[str, Any]) -> dict[str, str]:
        result = self.run((ARGOCD / "health.lua").read_text(), obj)
        assert isinstance(result, dict) and set(result) <= {"status", "message"}, result
        return result

    def discover(self, obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
        result = self.run((ARGOCD / "actions" / "discovery.lua").read_text(), obj)
        assert isinstance(result, dict), result
        return result

    def act(self, action: str, obj: dict[str, Any]) -> dict[str, Any]:
        result = self.run((ARGOCD / "actions" / action / "action.lua").read_text(), obj)
        assert isinstance(result, dict), f"{action} must return the object (old-style action), got {result!r}"
        return clean_returned_object(result, obj)


def _from_lua(value: Any) -> Any:
    """A Lua value as Argo CD's JSON encoding of it: tables with keys 1..n (or none) are arrays."""
    if lua51.lua_type(value) == "table":
        items = dict(value.items())
        if all(isinstance(k, int) for k in items) and sorted(items) == list(range(1, len(items) + 1)):
            return [_from_lua(items[i]) for i in range(1, len(items) + 1)]
        return {str(k): _from_lua(v) for k, v in items.items()}
    if lua51.lua_type(value) is not None:
        raise TypeError(f"a Lua {lua51.lua_type(value)} cannot be encoded as JSON")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def clean_returned_object(new: Any, old: Any) -> Any:
    """Argo CD's cleanReturnedObj: an empty Lua table comes back as [], where the live object had {}."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: clean_returned_object(v, old[k]) if k in old else v for k, v in new.items()}
    if new == [] and isinstance(old, dict):
        return {}
    if isinstance(new, list) and isinstance(old, list):
        return [clean_returned_object(v, old[i]) if i < len(old) else v for i, v in enumerate(new)]
    return new


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
    "metadata": {"name": "x"},
    "spec": {"items": ["a", "b"]},
    "status": {"phase": "Stable"},
}


@pytest.fixture(scope="module")
def lua() -> ArgoCDLua:
    return ArgoCDLua()


def test_the_sandbox_has_no_string_library(lua: ArgoCDLua) -> None:
    with pytest.raises(LuaError):
        lua.run('return string.format("%d", 1)', {})


def test_strings_have_no_methods_in_the_sandbox(lua: ArgoCDLua) -> None:
    with pytest.raises(LuaError):
        lua.run('return ("abc"):upper()', {})


def test_the_sandbox_has_no_math_io_debug_or_global_os(lua: ArgoCDLua) -> None:
    assert lua.run("return {type(math), type(io), type(debug), type(os), type(python)}", {}) == ["nil"] * 5


def test_the_sandbox_has_what_argocd_opens(lua: ArgoCDLua) -> None:
    script = (
        'local os = require("os"); return {type(os.date), type(os.time), type(table.insert), type(pairs)}'
    )
    assert lua.run(script, {}) == ["function"] * 4


def test_the_sandbox_hands_the_object_over_as_the_global_obj(lua: ArgoCDLua) -> None:
    assert lua.run("return {obj.metadata.name, obj.spec.items[2], #obj.spec.items}", SAMPLE) == ["x", "b", 2]


def test_an_unchanged_object_makes_no_patch_at_all() -> None:
    assert argocd_patches(SAMPLE, SAMPLE) == (None, None)


def test_a_change_to_status_alone_goes_only_to_the_status_subresource() -> None:
    changed = {**SAMPLE, "status": {"phase": "Stable", "action": {"type": "Promote"}}}
    assert argocd_patches(SAMPLE, changed) == ({"status": {"action": {"type": "Promote"}}}, None)


def test_a_change_to_spec_goes_to_the_main_resource() -> None:
    changed = {**SAMPLE, "spec": {"items": ["a"]}, "status": {"phase": "Paused"}}
    assert argocd_patches(SAMPLE, changed) == ({"status": {"phase": "Paused"}}, {"spec": {"items": ["a"]}})


def test_an_empty_table_returned_for_an_empty_object_is_read_back_as_an_object(lua: ArgoCDLua) -> None:
    live = {**SAMPLE, "metadata": {"name": "x", "annotations": {}}}
    returned = lua.run("return obj", live)
    assert returned["metadata"]["annotations"] == []
    assert clean_returned_object(returned, live) == live
