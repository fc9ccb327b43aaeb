"""An operator upgraded mid-rollout carries on from what the previous version wrote.

The fixture was recorded from the operator as it was before
``status.operatorState`` became a typed model: a blue-green rollout to 2.0.0,
then an undo back to 1.0.0 requested, caught with every bookkeeping key set
(revision sources, ``undo``, ``scaleDownAt``, ``rejected``, the fallback
counters). It also holds the two statuses that operator wrote next; this one
must write the same, apart from the RouteAccepted condition newer operators
add for an HTTPRoute.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from planner_world import World

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "upgrade" / "mid_undo_blue_green.json"


def recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


def without_route_accepted(status: dict[str, Any]) -> dict[str, Any]:
    """The status less the RouteAccepted condition, which operators since the recording add."""
    conditions = [c for c in status["conditions"] if c["type"] != "RouteAccepted"]
    return {**status, "conditions": conditions}


def test_the_fixture_holds_every_bookkeeping_key_in_the_old_form() -> None:
    state = recorded()["status"]["operatorState"]
    assert set(state) == {"revisions", "undo", "scaleDownAt", "rejected", "fallback"}
    assert state["undo"] is True and isinstance(state["scaleDownAt"]["fraud-1-0-0-a8419"], str)


def test_an_upgraded_operator_finishes_the_undo_and_the_scale_down_as_the_old_one_would() -> None:
    data = recorded()
    world = World(data["spec"], generation=data["generation"], status=data["status"])
    world.now = datetime.fromisoformat(data["now"])
    world.deployments = dict(data["deployments"])
    world.services = dict(data["services"])
    world.route_objects = dict(data["routes"])
    world.routes = set(data["routes"])
    world.ready_all()

    world.reconcile(1)
    assert without_route_accepted(world.status) == data["next"][0]
    assert world.status["stable"]["revision"] == "fraud-1-0-0-a8419"
    assert world.status["history"][-1]["reason"] == "Undo"

    world.ready_all()
    world.reconcile(400)  # past the blue-green scale-down delay of the revision undone
    assert without_route_accepted(world.status) == data["next"][1]
    assert "scaleDownAt" not in world.status["operatorState"]
