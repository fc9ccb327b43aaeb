"""argocd/actions: promote, promote-full, abort, retry and undo request an action through status, never spec.

Each action returns the object with status.action set; Argo CD turns that into
a merge patch and, because only status changed, sends it to the status
subresource alone. These tests run the scripts from argocd/argocd-cm-patch.yaml
in Argo CD's own Lua machinery (argocd-lua, see tests/argocd_vm.py) against the
recorded objects, look at the patches Argo CD would send, and check that the
request is one the operator's action model accepts.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from argocd_vm import FIXTURES, ArgoCD, ArgoCDError, argocd_patches
from modeldeploy.api import parse_status
from modeldeploy.api.status import ActionRequest, ActionType

ACTIONS = {
    "promote": ActionType.PROMOTE,
    "promote-full": ActionType.PROMOTE_FULL,
    "abort": ActionType.ABORT,
    "retry": ActionType.RETRY,
    "undo": ActionType.UNDO,
}
DISPLAY = {
    "promote": "Promote",
    "promote-full": "Promote Full",
    "abort": "Abort",
    "retry": "Retry",
    "undo": "Undo",
}

# Which actions discovery offers for each recorded object.
# Undo needs a revision promoted before the stable one (3.1.0 under 3.2.0; 3.0.2 was
# superseded, never promoted, so not under 3.1.0), a valid spec and something serving.
ENABLED: dict[str, set[str]] = {
    "no-status": set(),
    "pending-first-revision": set(),  # nothing to abort to: no stable revision yet
    "progressing-canary": {"promote", "promote-full", "abort"},
    "paused-waiting-for-promotion": {"promote", "promote-full", "abort"},
    "paused-by-spec": {"abort"},  # promoting a rollout paused in Git is for Git to decide
    "stable": {"undo"},
    "stable-paused-by-spec": {"undo"},
    "stable-generation-lag": {"undo"},
    "stable-autoscaled": {"undo"},
    "rolled-back": {"retry"},
    "degraded-fallback-active": set(),
    "invalid": set(),  # the operator acts on no request while the spec is invalid
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
def lua() -> ArgoCD:
    return ArgoCD()


def test_every_action_has_a_directory_and_discovery_names_them_all(lua: ArgoCD) -> None:
    directories = {p.parent.name for p in (FIXTURES.parents[2] / "argocd" / "actions").glob("*/action.lua")}
    assert directories == set(ACTIONS)
    assert set(lua.discover(fixture("stable"))) == set(ACTIONS)


def test_every_recorded_object_is_in_the_table() -> None:
    assert {path.stem for path in FIXTURES.glob("*.yaml")} == set(ENABLED)


@pytest.mark.parametrize(("name", "enabled"), ENABLED.items(), ids=list(ENABLED))
def test_discovery_offers_the_actions_that_apply(lua: ArgoCD, name: str, enabled: set[str]) -> None:
    offered = {action for action, entry in lua.discover(fixture(name)).items() if not entry["disabled"]}
    assert offered == enabled


def test_every_action_has_a_display_name_and_an_icon(lua: ArgoCD) -> None:
    for action, entry in lua.discover(fixture("progressing-canary")).items():
        assert entry["displayName"] == DISPLAY[action]
        assert entry["iconClass"].startswith("fa fa-fw fa-")


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("name", sorted(ENABLED))
def test_an_action_runs_exactly_when_discovery_offers_it(lua: ArgoCD, name: str, action: str) -> None:
    if action in ENABLED[name]:
        lua.act(action, fixture(name))
    else:
        with pytest.raises(ArgoCDError, match=r"^nothing to|unpause in Git"):
            lua.act(action, fixture(name))


ENABLED_PAIRS = [(name, action) for name, actions in ENABLED.items() for action in sorted(actions)]


@pytest.mark.parametrize(("name", "action"), ENABLED_PAIRS, ids=[f"{n}-{a}" for n, a in ENABLED_PAIRS])
def test_an_action_patches_only_status_action_through_the_status_subresource(
    lua: ArgoCD, name: str, action: str
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
    lua: ArgoCD, name: str, action: str
) -> None:
    live = fixture(name)
    status_patch, _ = argocd_patches(live, lua.act(action, copy.deepcopy(live)))
    patched = apply_merge_patch(live, status_patch)
    status = parse_status(patched["status"])
    assert status.action is not None and status.action.type is ACTIONS[action]
    assert status.model_copy(update={"action": None}) == parse_status(live["status"])


def test_a_new_request_replaces_a_pending_undo_and_drops_its_target_revision(lua: ArgoCD) -> None:
    live = fixture("progressing-canary")
    live["status"]["action"] = {"type": "Undo", "toRevision": "fraud-3-0-2-1b7e9d03"}
    status_patch, main_patch = argocd_patches(live, lua.act("abort", copy.deepcopy(live)))
    assert main_patch is None
    assert status_patch["status"]["action"]["toRevision"] is None
    action = apply_merge_patch(live, status_patch)["status"]["action"]
    # toRevision with any type but Undo would be refused by the CRD's CEL rule.
    assert ActionRequest.model_validate(action).to_revision is None


def test_the_action_scripts_do_not_need_a_status_to_exist_to_fail_cleanly(lua: ArgoCD) -> None:
    for action in ACTIONS:
        with pytest.raises(ArgoCDError, match=r"^nothing to"):
            lua.act(action, fixture("no-status"))


def undo_request(lua: ArgoCD, live: dict[str, Any], **params: str) -> ActionRequest:
    status_patch, main_patch = argocd_patches(live, lua.act("undo", copy.deepcopy(live), **params))
    assert main_patch is None
    patched = apply_merge_patch(live, status_patch)
    status = parse_status(patched["status"])
    assert status.action is not None
    return status.action


def test_undo_without_a_target_leaves_the_previous_revision_to_the_operator(lua: ArgoCD) -> None:
    action = undo_request(lua, fixture("stable"))
    assert action.type is ActionType.UNDO and action.to_revision is None


def test_an_empty_target_revision_from_the_ui_means_the_previous_revision(lua: ArgoCD) -> None:
    assert undo_request(lua, fixture("stable"), toRevision="").to_revision is None


def test_undo_to_a_named_revision_of_the_history(lua: ArgoCD) -> None:
    action = undo_request(lua, fixture("stable"), toRevision="fraud-3-0-2-1b7e9d03")
    assert action.type is ActionType.UNDO and action.to_revision == "fraud-3-0-2-1b7e9d03"
    wire = action.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert set(wire) == {"type", "toRevision", "requestedAt"}


def test_undo_during_a_canary_goes_back_to_a_named_revision(lua: ArgoCD) -> None:
    # Discovery does not offer undo here (no revision promoted before 3.1.0), but
    # a named revision of the history is a valid request: the canary is aborted.
    live = fixture("progressing-canary")
    assert undo_request(lua, live, toRevision="fraud-3-0-2-1b7e9d03").to_revision == "fraud-3-0-2-1b7e9d03"


def test_undo_to_the_stable_revision_is_refused(lua: ArgoCD) -> None:
    with pytest.raises(ArgoCDError, match=r"^fraud-3-2-0-7c9f2b41 is already the stable revision$"):
        lua.act("undo", fixture("stable"), toRevision="fraud-3-2-0-7c9f2b41")


def test_undo_to_a_revision_outside_the_history_is_refused(lua: ArgoCD) -> None:
    with pytest.raises(ArgoCDError, match=r"^fraud-9 is not in status.history"):
        lua.act("undo", fixture("stable"), toRevision="fraud-9")


def test_undo_with_no_earlier_promoted_revision_is_refused(lua: ArgoCD) -> None:
    with pytest.raises(ArgoCDError, match=r"^nothing to undo: no revision was promoted before fraud-3-1-0"):
        lua.act("undo", fixture("rolled-back"))


def test_discovery_asks_for_undo_s_target_revision_as_a_parameter(lua: ArgoCD) -> None:
    assert lua.discover(fixture("stable"))["undo"]["params"] == [{"name": "toRevision"}]


def test_a_new_undo_replaces_a_pending_promote(lua: ArgoCD) -> None:
    live = fixture("stable")
    live["status"]["action"] = {"type": "Promote", "requestedAt": "2026-11-22T10:00:00Z"}
    action = undo_request(lua, live, toRevision="fraud-3-1-0-5d8c1f7a")
    assert action.type is ActionType.UNDO and action.to_revision == "fraud-3-1-0-5d8c1f7a"
