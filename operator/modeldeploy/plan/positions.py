"""Positions: the stages a candidate passes through, and what each asks of replicas and traffic.

Order is fixed: Deploying, then Warmup, Shadow, Canary (one step at a time)
or BlueGreen, each only when the spec asks for it, then Promoting. A stage is
*entered* when the candidate has all the replicas that stage needs Ready; only
then does it receive the stage's traffic (mirror, canary weight, preview), and
its clock (pause, duration, preview) starts. That is rule 1 of DESIGN.md at
stage granularity: no live traffic to replicas that are not Ready.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modeldeploy.api import ModelDeploymentSpec, Router, Stage, parse_duration

PROGRESSION = (Stage.WARMUP, Stage.SHADOW, Stage.CANARY, Stage.BLUE_GREEN)


@dataclass(frozen=True)
class Position:
    """Where a candidate is: a stage and, for canary, a step index.

    Invariant: ``step`` is set for Canary only, and indexes ``strategy.canary.steps``.
    """

    stage: Stage
    step: int | None = None


def stages_of(spec: ModelDeploymentSpec) -> list[Position]:
    """Every position a candidate passes through, in order, ending with Promoting."""
    strategy = spec.strategy
    positions: list[Position] = []
    if strategy is not None:
        if strategy.warmup is not None:
            positions.append(Position(Stage.WARMUP))
        if strategy.shadow is not None:
            positions.append(Position(Stage.SHADOW))
        if strategy.canary is not None:
            positions += [Position(Stage.CANARY, i) for i in range(len(strategy.canary.steps))]
        if strategy.blue_green is not None:
            positions.append(Position(Stage.BLUE_GREEN))
    positions.append(Position(Stage.PROMOTING))
    return positions


def next_position(spec: ModelDeploymentSpec, current: Position) -> Position:
    positions = stages_of(spec)
    if current.stage == Stage.DEPLOYING:
        return positions[0]
    try:
        index = positions.index(current)
    except ValueError:
        return positions[-1]
    return positions[min(index + 1, len(positions) - 1)]


def canary_weight(spec: ModelDeploymentSpec, position: Position) -> int:
    if position.stage != Stage.CANARY or position.step is None or spec.strategy is None:
        return 0
    assert spec.strategy.canary is not None
    return spec.strategy.canary.steps[position.step].weight


def traffic_share(spec: ModelDeploymentSpec, position: Position) -> int:
    """Percent of the stable revision's size the candidate needs at this position (100: all of it).

    A canary step needs its weight; warm-up and shadow already size for the larger of the
    mirror percent and the first canary step (blue-green: the whole preview), so that the
    first live step starts without waiting for pods.
    """
    strategy = spec.strategy
    if position.stage in (Stage.PROMOTING, Stage.BLUE_GREEN) or strategy is None:
        return 100
    if position.stage == Stage.CANARY:
        return canary_weight(spec, position)
    first_weight = strategy.canary.steps[0].weight if strategy.canary else 100
    if strategy.blue_green is not None:
        first_weight = 100
    shadow = strategy.shadow.percent if strategy.shadow else 0
    return max(shadow, min(first_weight, 100))


def candidate_replicas(spec: ModelDeploymentSpec, position: Position, base: int | None = None) -> int:
    """How many replicas the candidate runs at this position (never zero while under test).

    ``base`` is the stable revision's size: ``spec.replicas`` when fixed, its current
    count when an autoscaler owns it.
    """
    replicas = spec.replicas if base is None else base
    return max(1, math.ceil(replicas * traffic_share(spec, position) / 100))


def position_seconds(spec: ModelDeploymentSpec, position: Position) -> float | None:
    """How long the position lasts once entered; None means until someone promotes."""
    strategy = spec.strategy
    if strategy is None:
        return 0.0
    if position.stage == Stage.SHADOW and strategy.shadow is not None:
        return parse_duration(strategy.shadow.duration)
    if position.stage == Stage.CANARY and strategy.canary is not None and position.step is not None:
        pause = strategy.canary.steps[position.step].pause
        return parse_duration(pause) if pause else None
    if position.stage == Stage.BLUE_GREEN and strategy.blue_green is not None:
        preview = strategy.blue_green.preview_duration
        if not strategy.blue_green.auto_promote:
            return None
        return parse_duration(preview) if preview else 0.0
    return 0.0


def analysed(spec: ModelDeploymentSpec, position: Position) -> bool:
    """Stages during which the analysis metrics run (not warm-up: no live data yet)."""
    return spec.analysis is not None and position.stage in (Stage.SHADOW, Stage.CANARY, Stage.BLUE_GREEN)


def mirror_percent(spec: ModelDeploymentSpec, position: Position) -> int:
    if position.stage == Stage.SHADOW and spec.strategy is not None and spec.strategy.shadow is not None:
        return spec.strategy.shadow.percent
    return 0


def approximates_weights(spec: ModelDeploymentSpec) -> bool:
    """The service router splits by replica ratio: the stable Service selects both revisions."""
    return spec.router == Router.SERVICE


def scaled_replicas(spec: ModelDeploymentSpec, position: Position, base: int | None = None) -> int:
    """Replicas to run at a position: what it needs, and with an exact router already what the next
    canary step needs, so that the next step starts the moment its pause ends."""
    needed = candidate_replicas(spec, position, base)
    if position.stage != Stage.CANARY or approximates_weights(spec):
        return needed
    following = next_position(spec, position)
    if following.stage != Stage.CANARY:
        return needed
    return max(needed, candidate_replicas(spec, following, base))
