"""A keyed work queue: at most one reconcile per ModelDeployment at a time, triggers coalesced.

Watch events for a ModelDeployment and for each of its children all say the
same thing: "look at this object again". Many of them arrive together (a
rollout touches a Deployment, two Services and a route), so triggers for a key
that is already queued collapse into one, and a trigger for a key being
reconciled marks it dirty so it runs once more afterwards, never twice at once.
Delayed triggers (``requeue_after``, the periodic resync) use the event loop's
timers. Reconciles run in worker threads (the API client is synchronous), at
most ``workers`` at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable

logger = logging.getLogger(__name__)


class WorkQueue:
    def __init__(self, work: Callable[[Hashable], float | None], workers: int = 4) -> None:
        self._work = work
        self._workers = workers
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._queued: set[Hashable] = set()
        self._running: set[Hashable] = set()
        self._dirty: set[Hashable] = set()
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._active = asyncio.Event()
        self._active.set()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"reconciler-{i}") for i in range(self._workers)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for timer in self._timers.values():
            timer.cancel()

    def trigger(self, key: Hashable, delay: float = 0.0) -> None:
        """Reconcile key now (or after delay seconds); duplicate triggers collapse."""
        if delay > 0:
            if self._loop is None:
                return
            existing = self._timers.get(key)
            due = self._loop.time() + delay
            if existing is not None and existing.when() <= due:
                return
            if existing is not None:
                existing.cancel()
            self._timers[key] = self._loop.call_at(due, self._fire, key)
            return
        if key in self._running:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.trigger(key)

    @property
    def paused(self) -> bool:
        return not self._active.is_set()

    def pause(self) -> None:
        """Stop starting reconciles (those running finish); triggers wait until resume."""
        self._active.clear()

    def resume(self) -> None:
        self._active.set()

    async def _worker(self) -> None:
        while True:
            await self._active.wait()
            key = await self._queue.get()
            if not self._active.is_set():
                self._queue.put_nowait(key)  # paused while waiting: keep it for later
                continue
            self._queued.discard(key)
            self._running.add(key)
            requeue: float | None = None
            try:
                requeue = await asyncio.to_thread(self._work, key)
            except Exception:
                logger.exception("reconcile of %s failed; retrying in 5s", key)
                requeue = 5.0
            finally:
                self._running.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self.trigger(key)
            elif requeue is not None:
                self.trigger(key, requeue)

    @property
    def idle(self) -> bool:
        return not self._queued and not self._running
