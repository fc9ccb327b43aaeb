"""HA: an instance stands aside exactly when kopf would, and a paused queue starts no reconcile."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from datetime import UTC, datetime, timedelta

from modeldeploy.reconcile.peering import stand_aside
from modeldeploy.reconcile.queue import WorkQueue

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def peer(priority: int, seconds_ago: float = 1, lifetime: int = 60) -> dict[str, object]:
    seen = (NOW - timedelta(seconds=seconds_ago)).isoformat()
    return {"priority": priority, "lifetime": lifetime, "lastseen": seen}


def test_a_live_higher_priority_peer_makes_us_stand_aside() -> None:
    assert stand_aside({"status": {"me": peer(100), "other": peer(200)}}, 100, NOW)
    assert not stand_aside({"status": {"me": peer(200), "other": peer(100)}}, 200, NOW)


def test_a_dead_peer_does_not_count() -> None:
    assert not stand_aside({"status": {"me": peer(100), "other": peer(200, seconds_ago=120)}}, 100, NOW)


def test_two_live_peers_with_the_same_priority_both_stand_aside() -> None:
    assert stand_aside({"status": {"me": peer(100), "twin": peer(100)}}, 100, NOW)
    assert not stand_aside({"status": {"me": peer(100)}}, 100, NOW)


def test_a_paused_queue_holds_triggers_until_resumed() -> None:
    async def scenario() -> list[Hashable]:
        done: list[Hashable] = []
        queue = WorkQueue(lambda key: done.append(key) or None, workers=2)
        queue.start()
        queue.pause()
        queue.trigger("a")
        queue.trigger("b")
        await asyncio.sleep(0.2)
        assert done == []
        queue.resume()
        await asyncio.sleep(0.2)
        await queue.stop()
        return done

    assert sorted(asyncio.run(scenario())) == ["a", "b"]  # type: ignore[type-var]
