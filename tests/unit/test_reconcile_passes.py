"""One reconcile plans again at once while a pass writes; the watch events of its own writes are echoes."""

from __future__ import annotations

import copy
import itertools
from datetime import datetime
from typing import Any

import pytest
from reconcile_fakes import BODY, NOW, Measurer

from modeldeploy.kube.store import Store
from modeldeploy.plan import inputs
from modeldeploy.plan.inputs import Inputs, LastParsed, Observed, Subject
from modeldeploy.plan.outputs import ObjectRef, Plan
from modeldeploy.reconcile import reconciler as module
from modeldeploy.reconcile.reconciler import MAX_PASSES, Reconciler


class Server:
    """Answers every write with what it would store, at a new resourceVersion each time."""

    def __init__(self) -> None:
        self.versions = itertools.count(10)
        self.writes: list[tuple[str, str, str]] = []  # (kind, name, resourceVersion)
        self.body = copy.deepcopy(BODY)

    def _answer(self, obj: dict[str, Any]) -> dict[str, Any]:
        result = copy.deepcopy(obj)
        result["metadata"]["resourceVersion"] = str(next(self.versions))
        self.writes.append(
            (result["kind"], result["metadata"]["name"], result["metadata"]["resourceVersion"])
        )
        return result

    def apply(self, kind: Any, obj: dict[str, Any], field_manager: str = "") -> dict[str, Any]:
        return self._answer(obj)

    def merge_patch(
        self, kind: Any, namespace: str, name: str, patch: dict[str, Any], subresource: str | None = None
    ) -> dict[str, Any]:
        if subresource == "status":
            self.body["status"] = {
                k: v for k, v in {**self.body.get("status", {}), **patch["status"]}.items() if v is not None
            }
            return self._answer(self.body)
        if kind.kind == "ModelDeployment":  # the finalizer
            self.body["metadata"] = {**self.body["metadata"], **patch["metadata"]}
            return self._answer(self.body)
        return self._answer(
            {"kind": "Deployment", "metadata": {"name": name, "namespace": namespace}, **patch}
        )

    def create(self, kind: Any, body: dict[str, Any]) -> dict[str, Any]:
        return body

    def delete(self, *args: Any) -> bool:
        return True


def reconcile_with(monkeypatch: pytest.MonkeyPatch, planned: Any) -> float | None:
    """One reconcile of a new ModelDeployment with ``planned`` for the planner."""
    monkeypatch.setattr(module, "plan", planned)
    store = Store()
    store.put(copy.deepcopy(BODY))
    return Reconciler(Server(), store, Measurer(), clock=lambda: NOW)(("risk", "fraud"))  # type: ignore[arg-type]


def test_a_reconcile_plans_again_until_a_pass_writes_nothing_and_its_writes_then_echo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes: list[int] = []  # writes made before each pass

    def counted(subject: Subject, observed: Observed, now: datetime, inputs: Inputs) -> Plan:
        passes.append(len(server.writes))
        return planner(subject, observed, now, inputs)

    planner = module.plan
    monkeypatch.setattr(module, "plan", counted)
    server, store = Server(), Store()
    store.put(copy.deepcopy(BODY))
    reconcile = Reconciler(server, store, Measurer(), clock=lambda: NOW)  # type: ignore[arg-type]
    reconcile(("risk", "fraud"))
    assert len(passes) >= 2 and passes[1] > 0, "the first pass wrote, and a second planned from its answers"
    written = len(server.writes)
    assert passes[-1] == written  # the last pass wrote nothing
    reconcile(("risk", "fraud"))
    assert len(server.writes) == written  # the last pass had seen every answer: nothing left to write
    for kind, name, version in server.writes:
        latest = max(v for k, n, v in server.writes if (k, n) == (kind, name))
        assert store.echoes(kind, "risk", name, version) == (version == latest)
        assert not store.echoes(kind, "risk", name, str(int(version) + 100))  # someone else's change


def test_someone_elses_version_is_news_even_after_the_operators_own_write() -> None:
    store = Store()
    store.put({**copy.deepcopy(BODY), "metadata": {**BODY["metadata"], "resourceVersion": "7"}}, own=True)
    assert store.echoes("ModelDeployment", "risk", "fraud", "7")
    store.put(
        {**copy.deepcopy(BODY), "metadata": {**BODY["metadata"], "resourceVersion": "8"}}
    )  # a user's edit
    assert not store.echoes("ModelDeployment", "risk", "fraud", "7")
    assert not store.echoes("ModelDeployment", "risk", "fraud", "8")
    store.remove("ModelDeployment", "risk", "fraud")
    assert not store.echoes("ModelDeployment", "risk", "fraud", "8")


def test_a_plan_that_never_stops_writing_is_cut_after_max_passes_and_queued_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes: list[int] = []

    def restless(subject: Subject, observed: Observed, now: datetime, inputs: Inputs) -> Plan:
        passes.append(1)
        return Plan(status={"message": f"pass {len(passes)}"}, requeue_after=30)

    requeue = reconcile_with(monkeypatch, restless)
    assert len(passes) == MAX_PASSES == 4 and requeue == 0.0


def test_a_pass_that_deletes_ends_the_reconcile_the_deletions_watch_events_trigger_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes: list[int] = []

    def deleting(subject: Subject, observed: Observed, now: datetime, inputs: Inputs) -> Plan:
        passes.append(1)
        return Plan(
            status={"message": "cleaning up"},
            delete=(ObjectRef("v1", "Service", "risk", "fraud-old"),),
            requeue_after=30,
        )

    requeue = reconcile_with(monkeypatch, deleting)
    assert len(passes) == 1 and requeue == 30


def test_a_model_deployment_gone_from_the_cache_leaves_no_parse_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed = LastParsed()
    monkeypatch.setattr(inputs, "PARSED", parsed)
    monkeypatch.setattr(module, "PARSED", parsed)
    store = Store()
    store.put({**copy.deepcopy(BODY), "metadata": {**BODY["metadata"], "resourceVersion": "7"}})
    reconcile = Reconciler(Server(), store, Measurer(), clock=lambda: NOW)  # type: ignore[arg-type]
    reconcile(("risk", "fraud"))
    assert set(parsed._last) == {("risk", "fraud")}
    store.remove("ModelDeployment", "risk", "fraud")
    reconcile(("risk", "fraud"))
    assert not parsed._last
