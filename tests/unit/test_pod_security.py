"""Every pod the operator makes starts from Pod Security `restricted`; a template's own fields win."""

from __future__ import annotations

from modeldeploy.plan.security import RESTRICTED_CONTAINER, RESTRICTED_POD, restricted


def test_a_bare_pod_spec_gets_the_restricted_profile() -> None:
    pod = restricted({"containers": [{"name": "model"}], "initContainers": [{"name": "init"}]})
    assert pod["securityContext"] == RESTRICTED_POD
    assert all(
        c["securityContext"] == RESTRICTED_CONTAINER for c in pod["containers"] + pod["initContainers"]
    )


def test_a_template_keeps_its_own_fields_under_the_defaults() -> None:
    pod = restricted(
        {
            "securityContext": {"runAsUser": 1000, "fsGroup": 2000},
            "containers": [{"name": "model", "securityContext": {"readOnlyRootFilesystem": True}}],
        }
    )
    assert pod["securityContext"] == {**RESTRICTED_POD, "runAsUser": 1000, "fsGroup": 2000}
    assert pod["containers"][0]["securityContext"] == {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True}


def test_the_input_is_not_changed() -> None:
    given = {"containers": [{"name": "model"}]}
    restricted(given)
    assert given == {"containers": [{"name": "model"}]}


def test_the_defaults_are_never_shared_with_what_is_rendered() -> None:
    pod = restricted({"containers": [{"name": "model"}, {"name": "sidecar"}]})
    pod["securityContext"]["seccompProfile"]["type"] = "Unconfined"
    pod["containers"][0]["securityContext"]["capabilities"]["drop"].append("NONE")
    assert RESTRICTED_POD == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert RESTRICTED_CONTAINER["capabilities"] == {"drop": ["ALL"]}
    assert pod["containers"][1]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
