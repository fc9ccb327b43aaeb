"""A wake-up the plan asks for is counted from the real instant, not from the whole second handed to it."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from reconcile_fakes import BODY, Client, Measurer

from modeldeploy.kube.store import Store
from modeldeploy.plan.inputs import Inputs, Observed, Subject
from modeldeploy.plan.outputs import Plan
from modeldeploy.reconcile import reconciler as module
from modeldeploy.reconcile.reconciler import Reconciler

SECOND = datetime(2026, 12, 2, 7, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("asked", "past_the_second", "woken_in"),
    [
        (5.0, 0.7, 4.3),  # an analysis due 5 s after the whole second: 4.3 s from the real instant
        (5.0, 0.0, 5.0),
        (0.5, 0.9, 0.5),  # "due now" still lets this round's writes land first
        (0.8, 0.9, 0.5),
    ],
)
def test_the_wakeup_is_counted_from_the_real_instant(
    monkeypatch: pytest.MonkeyPatch, asked: float, past_the_second: float, woken_in: float
) -> None:
    seen: list[datetime] = []

    def planned(subject: Subject, observed: Observed, now: datetime, inputs: Inputs) -> Plan:
        seen.append(now)
        return Plan(requeue_after=asked)

    monkeypatch.setattr(module, "plan", planned)
    store = Store()
    store.put(copy.deepcopy(BODY))
    clock = SECOND + timedelta(seconds=past_the_second)
    reconcile = Reconciler(Client(status_fails=False), store, Measurer(), clock=lambda: clock)  # type: ignore[arg-type]
    requeue: Any = reconcile(("risk", "fraud"))
    assert seen == [SECOND]  # the planner sees whole seconds, as status keeps them
    assert requeue == pytest.approx(woken_in)
