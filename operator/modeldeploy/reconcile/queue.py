"""A keyed work queue: at most one reconcile per ModelDeployment at a time, triggers coalesced.

Watch events for a ModelDeployment and for each of its children all say the
same thing: "look at this object again". Many of them arrive together (a
rollout touches a Deployment, two Services and a route), so triggers for a key
that is already queued collapse into one, and a trigger for a key being
reconciled marks it dirty so it runs once more afterwards, never twice at once.
Delayed triggers (``requeue_after``, the periodic resync) use the event loop's
timers. Reconciles run in worker threads of the queue's own (the API client is
synchronous), at most ``workers`` at a time. Not in asyncio's default executor:
that one has ``min(32, CPUs + 4)`` threads, shared with kopf, so on a 2-core
node ``--workers 16`` would have run at most 6 reconciles at once.

Two lanes. A key whose users are losing answers right now (its fallback must
take traffic: see :meth:`~modeldeploy.reconcile.reconciler.Reconciler.urgent`)
goes into the urgent lane, which workers empty before they take anything from
the normal lane; a key already waiting in the normal lane moves over. So a
burst of routine work (a resync of a thousand objects) never queues in front of
a failover.

Its metrics are client-go's workqueue metrics under the operator's prefix: how
many keys wait (``modeldeploy_workqueue_depth``) and how long a key waited from
its trigger to a worker (``modeldeploy_workqueue_wait_seconds``). A wait that
grows while reconciles stay short says the workers, not the API server, are
what the ModelDeployments queue for.

A reconcile that raises is retried with exponential backoff and jitter per key
(:class:`~modeldeploy.reconcile.backoff.Backoff`), at no sooner than the API
server's ``Retry-After`` when it sent one; the count resets at the first
reconcile of the key that succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

from prometheus_client import Gauge, Histogram

from modeldeploy.reconcile.backoff import Backoff

logger = logging.getLogger(__name__)

QUEUE_DEPTH = Gauge("modeldeploy_workqueue_depth", "ModelDeployments waiting for a reconcile worker.")
QUEUE_WAIT = Histogram(
    "modeldeploy_workqueue_wait_seconds",
    "Time a ModelDeployment waited in the work queue, from its trigger to a worker taking it.",
    ["lane"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


class WorkQueue:
    def __init__(
        self,
        work: Callable[[Hashable], float | None],
        workers: int = 4,
        urgent: Callable[[Hashable], bool] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._work = work
        self._workers = workers
        self._is_urgent = urgent
        self._backoff = backoff or Backoff()
        self._lanes: tuple[deque[Hashable], deque[Hashable]] = (deque(), deque())  # urgent, normal
        self._waiting = asyncio.Semaphore(0)  # one count per key in a lane
        self._queued: dict[Hashable, float] = {}  # key -> when it was queued (monotonic)
        self._running: set[Hashable] = set()
        self._dirty: dict[Hashable, bool] = {}  # key -> re-run urgently
        self._failures: dict[Hashable, int] = {}
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reconcile")
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
        self._threads.shutdown(wait=False)  # a reconcile still running ends on its own

    def trigger(self, key: Hashable, delay: float = 0.0, urgent: bool | None = None) -> None:
        """Reconcile key now (or after delay seconds); duplicate triggers collapse.

        ``urgent`` None asks the queue's urgency check (when it has one).
        """
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
        if urgent is None:
            urgent = self._urgent(key)
        if key in self._running:
            self._dirty[key] = self._dirty.get(key, False) or urgent
        elif key not in self._queued:
            self._queued[key] = time.monotonic()
            self._lanes[0 if urgent else 1].append(key)
            QUEUE_DEPTH.set(len(self._queued))
            self._waiting.release()
        elif urgent and key in self._lanes[1]:
            self._lanes[1].remove(key)
            self._lanes[0].append(key)

    def threadsafe_trigger(self, key: Hashable, urgent: bool | None = None) -> None:
        """trigger(), from any thread (the slow-I/O pool reports finished work this way)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(lambda: self.trigger(key, urgent=urgent))

    def _urgent(self, key: Hashable) -> bool:
        if self._is_urgent is None:
            return False
        try:
            return self._is_urgent(key)
        except Exception:
            logger.exception("urgency check of %s failed; queueing it normally", key)
            return False

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

    async def drained(self, poll: float = 0.05) -> None:
        """Return once no reconcile is running (after :meth:`pause`, none starts: nothing more is written)."""
        while self._running:
            await asyncio.sleep(poll)

    def _take(self) -> Hashable:
        urgent = bool(self._lanes[0])
        key = (self._lanes[0] if urgent else self._lanes[1]).popleft()
        queued = self._queued.pop(key)
        QUEUE_DEPTH.set(len(self._queued))
        QUEUE_WAIT.labels(lane="urgent" if urgent else "normal").observe(max(0.0, time.monotonic() - queued))
        return key

    async def _worker(self) -> None:
        while True:
            await self._active.wait()
            await self._waiting.acquire()
            if not self._active.is_set():
                self._waiting.release()  # paused while waiting: keep it for later
                continue
            key = self._take()
            self._running.add(key)
            requeue: float | None = None
            try:
                assert self._loop is not None
                requeue = await self._loop.run_in_executor(self._threads, self._work, key)
                self._failures.pop(key, None)
            except Exception as error:
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                requeue = self._backoff.delay(failures, getattr(error, "retry_after", None))
                logger.exception(
                    "reconcile of %s failed (%d in a row); retrying in %.1fs", key, failures, requeue
                )
            finally:
                self._running.discard(key)
            if key in self._dirty and key not in self._failures:
                self.trigger(key, urgent=self._dirty.pop(key) or None)
            else:
                # A trigger that came in during a failed reconcile waits out the backoff too.
                self._dirty.pop(key, None)
                if requeue is not None:
                    self.trigger(key, requeue)

    @property
    def idle(self) -> bool:
        return not self._queued and not self._running
