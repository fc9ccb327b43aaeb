"""argocd/actions: promote, abort and retry request an action through status, never through spec.

Each action returns the object with status.action set; Argo CD turns that into
a merge patch and, because only status changed, sends it to the status
subresource alone. These tests run the real Lua against the recorded objects
and look at the patches Argo CD would send.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from lupa.lua51 import LuaError
from test_argocd_lua_sandbox import FIXTURES, ArgoCDLua, argocd_patches

from modeldeploy.api import parse_status
from modeldeploy.api.status import ActionRequest, ActionType

ACTIONS = {"promote": ActionType.PROMOTE, "abort": ActionType.ABORT, "retry": ActionType.RETRY}

# Which actions discovery offers for each recorded object.
ENABLED: dict[str, set[str]] = {
    "no-status": set(),
    "pending-first-revision": set(),  # nothing to abort to: no stable revision yet
    "progressing-canary": {"promote", "abort"},
    "paused-waiting-for-promotion": {"promote", "abort"},
    "paused-by-spec": {"abort"},  # promoting a rollout paused in Git is for Git to decide
    "stable": set(),
    "stable-paused-by-spec": set(),
    "stable-generation-lag": set(),
    "rolled-back": {"retry"},
    "degraded-fallback-active": set(),
    "invalid": set(),
    "invalid-generation-lag": set(),
    "retired": set(),
}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def fixture(name: str) -> dict[str, Any]:
    document = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())
    assert isinstance(document, dict)
    return document


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


@pytest.fixture(scope="module")
def lua() -> ArgoCDLua:
    return ArgoCDLua()


def test_every_action_has_a_directory_and_discovery_names_them_all(lua: ArgoCDLua) -> None:
    directories = {p.parent.name for p in (FIXTURES.parents[2] / "argocd" / "actions").glob("*/action.lua")}
    assert directories == set(ACTIONS)
    assert set(lua.discover(fixture("stable"))) == set(ACTIONS)


def test_every_recorded_object_is_in_the_table() -> None:
    assert {path.stem for path in FIXTURES.glob("*.yaml")} == set(ENABLED)


@pytest.mark.parametrize(("name", "enabled"), ENABLED.items(), ids=list(ENABLED))
def test_discovery_offers_the_actions_that_apply(lua: ArgoCDLua, name: str, enabled: set[str]) -> None:
    offered = {action for action, entry in lua.discover(fixture(name)).items() if not entry["disabled"]}
    assert offered == enabled


def test_every_action_has_a_display_name_and_an_icon(lua: ArgoCDLua) -> None:
    for action, entry in lua.discover(fixture("progressing-canary")).items():
        assert entry["displayName"] == action.capitalize()
        assert entry["iconClass"].startswith("fa fa-fw fa-")


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("name", sorted(ENABLED))
def test_an_action_runs_exactly_when_discovery_offers_it(lua: ArgoCDLua, name: str, action: str) -> None:
    if action in ENABLED[name]:
        lua.act(action, fixture(name))
    else:
        with pytest.raises(LuaError, match=r"^nothing to|unpause in Git"):
            lua.act(action, fixture(name))


ENABLED_PAIRS = [(name, action) for name, actions in ENABLED.items() for action in sorted(actions)]


@pytest.mark.parametrize(("name", "action"), ENABLED_PAIRS, ids=[f"{n}-{a}" for n, a in ENABLED_PAIRS])
def test_an_action_patches_only_status_action_through_the_status_subresource(
    lua: ArgoCDLua, name: str, action: str
) -> None:
    live = fixture(name)
    before = datetime.now(UTC).replace(microsecond=0)
    status_patch, main_patch = argocd_patches(live, lua.act(action, copy.deepcopy(live)))
    after = datetime.now(UTC)

    assert main_patch is None  # spec and metadata untouched: nothing for Argo CD to see as drift
    assert status_patch is not None and set(status_patch) == {"status"}
    assert set(status_patch["status"]) == {"action"}
    requested_at = status_patch["status"]["action"].pop("requestedAt")
    assert status_patch["status"]["action"] == {"type": ACTIONS[action].value}
    assert TIMESTAMP.match(requested_at)
    assert before - timedelta(seconds=1) <= datetime.fromisoformat(requested_at) <= after


@pytest.mark.parametrize(("name", "action"), ENABLED_PAIRS, ids=[f"{n}-{a}" for n, a in ENABLED_PAIRS])
def test_the_patched_status_is_a_valid_status_with_the_requested_action(
    lua: ArgoCDLua, name: str, action: str
) -> None:
    live = fixture(name)
    status_patch, _ = argocd_patches(live, lua.act(action, copy.deepcopy(live)))
    patched = apply_merge_patch(live, status_patch)
    status = parse_status(patched["status"])
    assert status.action is not None and status.action.type is ACTIONS[action]
    assert status.model_copy(update={"action": None}) == parse_status(live["status"])


def test_a_new_request_replaces_a_pending_undo_and_drops_its_target_revision(lua: ArgoCDLua) -> None:
    live = fixture("progressing-canary")
    live["status"]["action"] = {"type": "Undo", "toRevision": "fraud-3-0-2-1b7e9d03"}
    status_patch, main_patch = argocd_patches(live, lua.act("abort", copy.deepcopy(live)))
    assert main_patch is None
    assert status_patch["status"]["action"]["toRevision"] is None
    action = apply_merge_patch(live, status_patch)["status"]["action"]
    # toRevision with any type but Undo would be refused by the CRD's CEL rule.
    assert ActionRequest.model_validate(action).to_revision is None


def test_the_action_scripts_do_not_need_a_status_to_exist_to_fail_cleanly(lua: ArgoCDLua) -> None:
    for action in ACTIONS:
        with pytest.raises(LuaError, match=r"^nothing to"):
            lua.act(action, fixture("no-status"))
