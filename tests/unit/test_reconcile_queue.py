"""The WorkQueue: one reconcile per object at a time, triggers collapsed, a change seen mid-run kept."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable

from modeldeploy.reconcile.queue import WorkQueue


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


class Work:
    """A reconcile that can be held mid-run; counts runs and how many ran at once."""

    def __init__(self) -> None:
        self.runs: list[Hashable] = []
        self.running = 0
        self.most_at_once = 0
        self.hold = threading.Event()
        self.hold.set()
        self._lock = threading.Lock()

    def __call__(self, key: Hashable) -> float | None:
        with self._lock:
            self.runs.append(key)
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.hold.wait(5)
        with self._lock:
            self.running -= 1
        return None


def test_a_change_seen_while_the_object_is_reconciled_runs_it_once_more_afterwards() -> None:
    """The reconcile may have read the object before the change: dropping the re-run would lose it."""

    async def scenario() -> Work:
        work = Work()
        work.hold.clear()
        queue = WorkQueue(work, workers=2)
        queue.start()
        try:
            queue.trigger("risk/fraud")
            await until(lambda: work.running == 1)
            for _ in range(3):  # three watch events while it runs: one more run, not three, not two at once
                queue.trigger("risk/fraud")
            await asyncio.sleep(0.05)
            assert work.runs == ["risk/fraud"]
            work.hold.set()
            await until(lambda: queue.idle and len(work.runs) >= 2)
            await asyncio.sleep(0.05)
        finally:
            await queue.stop()
        return work

    work = asyncio.run(scenario())
    assert work.runs == ["risk/fraud", "risk/fraud"]
    assert work.most_at_once == 1


def test_triggers_for_a_queued_object_collapse_into_one_reconcile() -> None:
    async def scenario() -> Work:
        work = Work()
        queue = WorkQueue(work, workers=1)
        queue.pause()
        queue.start()
        try:
            for key in ("a", "b", "a", "a", "b"):
                queue.trigger(key)
            queue.resume()
            await until(lambda: queue.idle and len(work.runs) >= 2)
            await asyncio.sleep(0.05)
        finally:
            await queue.stop()
        return work

    assert sorted(map(str, asyncio.run(scenario()).runs)) == ["a", "b"]


def test_a_requeue_after_runs_the_object_again_later() -> None:
    async def scenario() -> list[Hashable]:
        runs: list[Hashable] = []

        def work(key: Hashable) -> float | None:
            runs.append(key)
            return 0.05 if len(runs) == 1 else None

        queue = WorkQueue(work, workers=1)
        queue.start()
        try:
            queue.trigger("a")
            await until(lambda: len(runs) == 2)
        finally:
            await queue.stop()
        return runs

    assert asyncio.run(scenario()) == ["a", "a"]


def test_the_queue_exports_how_many_wait_and_how_long_they_waited() -> None:
    """What an SRE reads to tell a queue that is short of workers from a slow API server."""
    from prometheus_client import REGISTRY

    def sample(name: str, lane: str | None = None) -> float:
        value = REGISTRY.get_sample_value(name, {"lane": lane} if lane else {})
        return value or 0.0

    async def scenario() -> tuple[float, float]:
        work = Work()
        queue = WorkQueue(work, workers=1)
        queue.pause()
        queue.start()
        try:
            for key in ("a", "b", "a"):
                queue.trigger(key)
            depth = sample("modeldeploy_workqueue_depth")
            await asyncio.sleep(0.2)  # both wait at least this long
            queue.resume()
            await until(lambda: queue.idle and len(work.runs) >= 2)
        finally:
            await queue.stop()
        return depth, sample("modeldeploy_workqueue_depth")

    count = sample("modeldeploy_workqueue_wait_seconds_count", "normal")
    total = sample("modeldeploy_workqueue_wait_seconds_sum", "normal")
    depth, after = asyncio.run(scenario())
    assert (depth, after) == (2, 0)
    assert sample("modeldeploy_workqueue_wait_seconds_count", "normal") - count == 2
    assert sample("modeldeploy_workqueue_wait_seconds_sum", "normal") - total >= 0.4


def test_as_many_reconciles_run_at_once_as_there_are_workers() -> None:
    """Not capped by asyncio's default executor: min(32, CPUs + 4) threads, 6 on two cores."""

    async def scenario() -> Work:
        work = Work()
        work.hold.clear()
        queue = WorkQueue(work, workers=40)
        queue.start()
        try:
            for i in range(40):
                queue.trigger(f"md-{i}")
            await until(lambda: work.running == 40)
            work.hold.set()
            await until(lambda: queue.idle and len(work.runs) == 40)
        finally:
            work.hold.set()
            await queue.stop()
        return work

    assert asyncio.run(scenario()).most_at_once == 40


def test_drained_returns_once_the_reconciles_running_at_the_pause_have_ended() -> None:
    """What the peering follower waits for before it says this instance writes nothing more."""

    async def scenario() -> tuple[list[Hashable], list[Hashable]]:
        work = Work()
        work.hold.clear()
        queue = WorkQueue(work, workers=2)
        queue.start()
        try:
            queue.trigger("a")
            await until(lambda: work.running == 1)
            queue.pause()
            queue.trigger("b")  # waits for resume
            drained = asyncio.create_task(queue.drained(poll=0.01))
            await asyncio.sleep(0.1)
            assert not drained.done()  # "a" still runs
            work.hold.set()
            await asyncio.wait_for(drained, 5)
            assert work.running == 0
            at_drain = list(work.runs)
            await asyncio.sleep(0.1)
            paused_runs = list(work.runs)
            queue.resume()
            await until(lambda: queue.idle and len(work.runs) >= 2)
        finally:
            await queue.stop()
        assert paused_runs == at_drain
        return at_drain, work.runs

    at_drain, runs = asyncio.run(scenario())
    assert at_drain == ["a"] and runs == ["a", "b"]
