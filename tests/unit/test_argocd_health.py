"""argocd/health.lua tells Argo CD truthfully how a ModelDeployment is: a table over recorded objects.

The objects in tests/fixtures/argocd are ModelDeployments as the API server
returns them, with the status the operator writes; each is checked to be
valid for the API models, so the table runs against shapes the operator can
really produce. The check runs in Argo CD's own Lua machinery (argocd-lua,
see tests/argocd_vm.py), read from argocd/argocd-cm-patch.yaml.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from argocd_vm import FIXTURES, ArgoCD
from modeldeploy.api import Phase, parse_manifest

PROGRESSING, HEALTHY, DEGRADED, SUSPENDED = "Progressing", "Healthy", "Degraded", "Suspended"

TABLE: list[tuple[str, str, str]] = [
    ("no-status", PROGRESSING, "Waiting for the modeldeploy operator to observe the ModelDeployment"),
    ("pending-first-revision", PROGRESSING, "first revision 3.2.0: waiting for 0/4 replicas to be ready"),
    ("progressing-canary", PROGRESSING, "canary step 2/3 at 25%, error-rate 0.003 <= 0.01"),
    (
        "paused-waiting-for-promotion",
        SUSPENDED,
        "canary step 3/3 at 50%: waiting for a promotion (kubectl modeldeploy promote)",
    ),
    ("paused-by-spec", SUSPENDED, "paused by spec.paused at canary step 2/3 (25%)"),
    ("stable", HEALTHY, "3.2.0 serves 100% of traffic"),
    ("stable-autoscaled", HEALTHY, "3.2.0 serves 100% of traffic"),
    ("stable-paused-by-spec", SUSPENDED, "3.2.0 serves 100% of traffic"),
    (
        "stable-generation-lag",
        PROGRESSING,
        "Waiting for the modeldeploy operator to observe generation 8 (status is from generation 7)",
    ),
    (
        "rolled-back",
        DEGRADED,
        "3.2.0 rolled back: error-rate 0.034 > 0.01 twice (failureLimit 2); 3.1.0 serves 100%",
    ),
    ("degraded-fallback-active", DEGRADED, "no ready replicas of 3.1.0: fallback serves 100%"),
    ("invalid", DEGRADED, "spec.traffic.gatewayAPI: Gateway gateways/public not found"),
    (
        "invalid-generation-lag",
        PROGRESSING,
        "Waiting for the modeldeploy operator to observe generation 10 (status is from generation 9)",
    ),
    ("retired", HEALTHY, "retired: serving objects removed, history kept"),
]


def fixture(name: str) -> dict[str, Any]:
    document = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def lua() -> ArgoCD:
    return ArgoCD()


@pytest.mark.parametrize(("name", "status", "message"), TABLE, ids=[row[0] for row in TABLE])
def test_health_of_recorded_model_deployment(lua: ArgoCD, name: str, status: str, message: str) -> None:
    assert lua.health(fixture(name)) == {"status": status, "message": message}


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_recorded_object_is_a_valid_model_deployment_with_no_unknown_status_field(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    assert parse_manifest(document).to_wire(exclude_unset=True) == document


def test_every_recorded_object_is_in_the_table() -> None:
    assert {path.stem for path in FIXTURES.glob("*.yaml")} == {row[0] for row in TABLE}


def with_status(phase: str | None, **status: Any) -> dict[str, Any]:
    document = fixture("stable")
    document["status"] = {"observedGeneration": document["metadata"]["generation"], **status}
    if phase is not None:
        document["status"]["phase"] = phase
    return document


PHASES: dict[Phase, str] = {
    Phase.PENDING: PROGRESSING,
    Phase.PROGRESSING: PROGRESSING,
    Phase.PAUSED: SUSPENDED,
    Phase.STABLE: HEALTHY,
    Phase.ROLLED_BACK: DEGRADED,
    Phase.DEGRADED: DEGRADED,
    Phase.RETIRED: HEALTHY,
    Phase.INVALID: DEGRADED,
}


def test_every_phase_of_the_api_has_a_health() -> None:
    assert set(PHASES) == set(Phase)


@pytest.mark.parametrize(("phase", "status"), PHASES.items(), ids=[p.value for p in PHASES])
def test_each_phase_maps_to_its_health_with_the_status_message(
    lua: ArgoCD, phase: Phase, status: str
) -> None:
    assert lua.health(with_status(phase.value, message=f"it is {phase.value}")) == {
        "status": status,
        "message": f"it is {phase.value}",
    }


@pytest.mark.parametrize(("phase", "status"), PHASES.items(), ids=[p.value for p in PHASES])
def test_without_a_status_message_the_phase_is_the_message(lua: ArgoCD, phase: Phase, status: str) -> None:
    assert lua.health(with_status(phase.value)) == {"status": status, "message": phase.value}


@pytest.mark.parametrize(("phase", "status"), PHASES.items(), ids=[p.value for p in PHASES])
def test_a_status_older_than_the_spec_is_progressing_whatever_the_phase(
    lua: ArgoCD, phase: Phase, status: str
) -> None:
    document = with_status(phase.value, message="old news")
    document["metadata"]["generation"] = document["status"]["observedGeneration"] + 1
    assert lua.health(document)["status"] == PROGRESSING


@pytest.mark.parametrize(("phase", "status"), PHASES.items(), ids=[p.value for p in PHASES])
def test_spec_paused_suspends_unless_something_is_broken(lua: ArgoCD, phase: Phase, status: str) -> None:
    document = with_status(phase.value)
    document["spec"]["paused"] = True
    assert lua.health(document)["status"] == (DEGRADED if status == DEGRADED else SUSPENDED)


def test_a_status_newer_than_the_cached_spec_is_not_a_lag(lua: ArgoCD) -> None:
    document = with_status("Stable")
    document["status"]["observedGeneration"] = document["metadata"]["generation"] + 1
    assert lua.health(document)["status"] == HEALTHY


def test_an_empty_status_is_progressing(lua: ArgoCD) -> None:
    document = fixture("stable")
    document["status"] = {}
    assert lua.health(document)["status"] == PROGRESSING


def test_a_status_without_observed_generation_is_not_trusted(lua: ArgoCD) -> None:
    document = fixture("stable")
    del document["status"]["observedGeneration"]
    assert lua.health(document) == {
        "status": PROGRESSING,
        "message": "Waiting for the modeldeploy operator to observe generation 7",
    }


def test_an_observed_status_without_a_phase_is_progressing(lua: ArgoCD) -> None:
    assert lua.health(with_status(None))["status"] == PROGRESSING


def test_a_phase_this_check_does_not_know_is_unknown_not_a_guess(lua: ArgoCD) -> None:
    assert lua.health(with_status("Hibernating", message="zzz")) == {
        "status": "Unknown",
        "message": "Unknown phase Hibernating: zzz",
    }


def test_an_empty_status_message_falls_back_to_the_phase(lua: ArgoCD) -> None:
    assert lua.health(with_status("Stable", message=""))["message"] == "Stable"


def test_the_check_does_not_change_the_object(lua: ArgoCD) -> None:
    document = fixture("progressing-canary")
    before = copy.deepcopy(document)
    lua.health(document)
    assert document == before
