"""argocd/argocd-cm-patch.yaml carries exactly the Lua in argocd/, in the keys Argo CD reads.

The .lua files are the source; the patch is generated from them (and the
tests run the scripts through it in Argo CD's own Lua machinery). When this test fails, regenerate it:

    .venv/bin/python tests/unit/test_argocd_configmap.py > argocd/argocd-cm-patch.yaml
"""

from __future__ import annotations

import sys

import yaml

from argocd_vm import ARGOCD

PATCH = ARGOCD / "argocd-cm-patch.yaml"
HEALTH_KEY = "resource.customizations.health.modeldeploy.io_ModelDeployment"
ACTIONS_KEY = "resource.customizations.actions.modeldeploy.io_ModelDeployment"


def _block(text: str, indent: int) -> str:
    """A YAML literal block scalar's body: every non-empty line indented."""
    pad = " " * indent
    return "".join(pad + line if line.strip() else "\n" for line in text.splitlines(keepends=True))


def render_patch() -> str:
    actions = sorted(p.parent.name for p in (ARGOCD / "actions").glob("*/action.lua"))
    definitions = "".join(
        f"    - name: {name}\n      action.lua: |\n"
        + _block((ARGOCD / "actions" / name / "action.lua").read_text(), 8)
        for name in actions
    )
    return (
        "# Generated from argocd/*.lua by `.venv/bin/python tests/unit/test_argocd_configmap.py`;\n"
        "# edit the .lua files, not this. Merge it into Argo CD's argocd-cm (see argocd/README.md):\n"
        "#   kubectl -n argocd patch configmap argocd-cm --type merge \\\n"
        "#     --patch-file argocd/argocd-cm-patch.yaml\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: argocd-cm\n"
        "data:\n"
        f"  {HEALTH_KEY}: |\n" + _block((ARGOCD / "health.lua").read_text(), 4) + f"  {ACTIONS_KEY}: |\n"
        "    discovery.lua: |\n"
        + _block((ARGOCD / "actions" / "discovery.lua").read_text(), 6)
        + "    definitions:\n"
        + definitions
    )


def test_the_committed_patch_is_generated_from_the_lua_files() -> None:
    assert PATCH.read_text() == render_patch(), (
        "argocd/argocd-cm-patch.yaml is stale; run "
        "`.venv/bin/python tests/unit/test_argocd_configmap.py > argocd/argocd-cm-patch.yaml`"
    )


def test_the_patch_holds_each_script_verbatim_under_the_keys_argocd_reads() -> None:
    data = yaml.safe_load(PATCH.read_text())["data"]
    assert set(data) == {HEALTH_KEY, ACTIONS_KEY}
    assert data[HEALTH_KEY] == (ARGOCD / "health.lua").read_text()
    actions = yaml.safe_load(data[ACTIONS_KEY])
    assert set(actions) == {"discovery.lua", "definitions"}
    assert actions["discovery.lua"] == (ARGOCD / "actions" / "discovery.lua").read_text()
    assert {d["name"]: d["action.lua"] for d in actions["definitions"]} == {
        name: (ARGOCD / "actions" / name / "action.lua").read_text()
        for name in ("abort", "promote", "promote-full", "retry", "undo")
    }


if __name__ == "__main__":
    sys.stdout.write(render_patch())
