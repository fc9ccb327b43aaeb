"""plan/positions.py as a table: the positions a strategy passes through, and what each asks for."""

from __future__ import annotations

from typing import Any

import pytest
from planner_world import spec

from modeldeploy.api import ModelDeploymentSpec, Stage, parse_spec
from modeldeploy.plan.positions import (
    Position,
    analysed,
    candidate_replicas,
    next_position,
    position_seconds,
    scaled_replicas,
    stages_of,
)

CANARY = {"steps": [{"weight": 10, "pause": "1m"}, {"weight": 50}]}
ANALYSIS = {"metrics": [{"name": "err", "query": "up", "max": 0.5}]}

DEPLOYING, WARMUP, SHADOW = Position(Stage.DEPLOYING), Position(Stage.WARMUP), Position(Stage.SHADOW)
STEP_0, STEP_1 = Position(Stage.CANARY, 0), Position(Stage.CANARY, 1)
BLUE_GREEN, PROMOTING = Position(Stage.BLUE_GREEN), Position(Stage.PROMOTING)


def parsed(replicas: int = 10, router: str = "gatewayAPI", **strategy: Any) -> ModelDeploymentSpec:
    extra: dict[str, Any] = {"strategy": strategy} if strategy else {}
    return parse_spec(spec(replicas=replicas, router=router, analysis=ANALYSIS, **extra))


def test_every_stage_the_strategy_asks_for_in_order_then_promoting() -> None:
    full = parsed(warmup={"path": "/infer"}, shadow={"percent": 30, "duration": "2m"}, canary=CANARY)
    assert stages_of(full) == [WARMUP, SHADOW, STEP_0, STEP_1, PROMOTING]
    assert stages_of(parsed(blueGreen={"previewDuration": "3m"})) == [BLUE_GREEN, PROMOTING]
    assert stages_of(parsed()) == [PROMOTING]


def test_next_position_walks_the_stages_and_stays_at_promoting() -> None:
    canary = parsed(shadow={"percent": 30, "duration": "2m"}, canary=CANARY)
    walk = [DEPLOYING]
    for _ in range(5):
        walk.append(next_position(canary, walk[-1]))
    assert walk == [DEPLOYING, SHADOW, STEP_0, STEP_1, PROMOTING, PROMOTING]
    assert next_position(canary, BLUE_GREEN) == PROMOTING  # not in this strategy (spec changed): promote


@pytest.mark.parametrize(
    ("strategy", "position", "replicas"),
    [
        ({}, PROMOTING, 10),
        ({"canary": CANARY}, STEP_0, 1),  # 10% of 10
        ({"canary": CANARY}, STEP_1, 5),
        ({"canary": {"steps": [{"weight": 1}]}}, Position(Stage.CANARY, 0), 1),  # never zero
        ({"canary": CANARY}, PROMOTING, 10),
        ({"blueGreen": {"previewDuration": "3m"}}, BLUE_GREEN, 10),
        ({"warmup": {"path": "/infer"}, "canary": CANARY}, WARMUP, 1),  # enough for the first step
        ({"warmup": {"path": "/infer"}, "blueGreen": {}}, WARMUP, 10),  # blue-green previews at full size
        ({"warmup": {"path": "/infer"}}, WARMUP, 10),
        ({"shadow": {"percent": 30, "duration": "2m"}, "canary": CANARY}, SHADOW, 3),  # 30% mirrored
        ({"shadow": {"percent": 5, "duration": "2m"}, "canary": CANARY}, SHADOW, 1),
        ({"shadow": {"percent": 30, "duration": "2m"}}, SHADOW, 10),  # then promoted at once: full
    ],
)
def test_candidate_replicas(strategy: dict[str, Any], position: Position, replicas: int) -> None:
    assert candidate_replicas(parsed(**strategy), position) == replicas


def test_with_an_exact_router_a_canary_step_already_runs_what_the_next_step_needs() -> None:
    assert scaled_replicas(parsed(canary=CANARY), STEP_0) == 5
    assert scaled_replicas(parsed(canary=CANARY), STEP_1) == 5
    assert scaled_replicas(parsed(router="service", canary=CANARY), STEP_0) == 1
    assert scaled_replicas(parsed(shadow={"percent": 30, "duration": "2m"}, canary=CANARY), SHADOW) == 3


@pytest.mark.parametrize(
    ("strategy", "position", "seconds"),
    [
        ({}, PROMOTING, 0.0),
        ({"shadow": {"percent": 30, "duration": "2m"}}, SHADOW, 120.0),
        ({"canary": CANARY}, STEP_0, 60.0),
        ({"canary": CANARY}, STEP_1, None),  # no pause: until promoted
        ({"canary": CANARY}, PROMOTING, 0.0),
        ({"canary": CANARY, "warmup": {"path": "/infer"}}, WARMUP, 0.0),
        ({"blueGreen": {"previewDuration": "3m"}}, BLUE_GREEN, 180.0),
        ({"blueGreen": {"previewDuration": "3m", "autoPromote": False}}, BLUE_GREEN, None),
        ({"blueGreen": {}}, BLUE_GREEN, 0.0),
        ({"blueGreen": {"previewDuration": "3m"}}, SHADOW, 0.0),
    ],
)
def test_position_seconds(strategy: dict[str, Any], position: Position, seconds: float | None) -> None:
    assert position_seconds(parsed(**strategy), position) == seconds


def test_analysis_runs_during_live_traffic_stages_only_and_only_when_the_spec_has_metrics() -> None:
    with_metrics = parsed(canary=CANARY)
    assert [analysed(with_metrics, p) for p in (WARMUP, SHADOW, STEP_0, BLUE_GREEN, PROMOTING)] == [
        False,
        True,
        True,
        True,
        False,
    ]
    without = parse_spec(spec(strategy={"canary": CANARY}))
    assert not analysed(without, STEP_0)
