"""A reconcile hands notices to the outbox only after the status recording them is written."""

from __future__ import annotations

import copy

import pytest
from reconcile_fakes import BODY, NOW, Client, Measurer

from modeldeploy.kube.client import ApiError
from modeldeploy.kube.store import Store
from modeldeploy.notify.message import Origin
from modeldeploy.plan.outputs import Notice
from modeldeploy.reconcile.reconciler import Reconciler


class Outbox:
    def __init__(self) -> None:
        self.submitted: list[tuple[Origin, tuple[Notice, ...]]] = []

    def targets_for(self, namespace: str) -> frozenset[str]:
        return frozenset({"team"})

    def sink_serves(self, namespace: str) -> bool:
        return False

    def submit(self, origin: Origin, notices: tuple[Notice, ...]) -> None:
        self.submitted.append((origin, notices))


def reconciler(client: Client, outbox: Outbox) -> Reconciler:
    store = Store()
    store.put(copy.deepcopy(BODY))
    return Reconciler(client, store, Measurer(), clock=lambda: NOW, outbox=outbox)  # type: ignore[arg-type]


def test_notices_go_to_the_outbox_once_the_status_is_written() -> None:
    client, outbox = Client(status_fails=False), Outbox()
    reconciler(client, outbox)(("risk", "fraud"))
    assert client.status_written
    [(origin, notices)] = outbox.submitted
    assert origin == Origin("risk", "fraud", "fraud-detector")
    assert [(n.event.value, n.targets) for n in notices] == [("RolloutStarted", ("team",))]


def test_a_failed_status_write_sends_nothing() -> None:
    client, outbox = Client(status_fails=True), Outbox()
    with pytest.raises(ApiError):
        reconciler(client, outbox)(("risk", "fraud"))
    assert outbox.submitted == []
