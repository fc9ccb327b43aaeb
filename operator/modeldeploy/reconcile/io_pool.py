"""Slow I/O off the reconcile workers: a bounded pool of threads with a per-ModelDeployment cap.

Warm-up requests, retrain webhooks and Prometheus queries go to addresses that
tenants choose, and such an address can be slow on purpose: a Prometheus that
answers one byte a second, a webhook that never answers, a warm-up of 100,000
requests. Run inside a reconcile, four of them would hold every reconcile
worker and, with them, every other tenant's rollback and failover. So a
reconcile never waits for them. The :class:`~modeldeploy.reconcile.measure.Measurer`
asks this pool for a job's result by name: the first ask starts the job and
returns nothing yet (the planner sees "not measured this round"); when the job
ends, the pool triggers that ModelDeployment's reconcile, and the next ask
returns the result, once.

Bounds:

- ``workers`` threads in all;
- at most ``per_owner`` jobs of one ModelDeployment running at once. A job
  over the cap is not queued either: it is asked for again at the reconcile
  that the end of one of its owner's jobs triggers. So the pool's queue never
  holds more than ``per_owner`` jobs of one owner, a hung job holds a thread
  of its own owner's share only, and as long as fewer than
  ``workers // per_owner`` ModelDeployments hang at once, no other job waits
  for a thread at all.

A thread cannot be interrupted; a call that hangs holds its thread until the
call's own deadline ends it. Those deadlines are the outbound-call layer's
business; this pool bounds whom a hung call can hurt.

Results live in memory until taken. They are measurements; what was measured
is recorded in ``status`` by the planner (DESIGN rule 6), so after a restart a
measurement that was due is still due and runs again, and one already recorded
is not due. A result nobody takes within ``keep_seconds`` (its owner moved on
to another stage, or was deleted) is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from prometheus_client import Counter, Gauge

logger = logging.getLogger(__name__)

T = TypeVar("T")

IO_RUNNING = Gauge("modeldeploy_slow_io_running", "Slow I/O jobs (warm-up, webhook, queries) running now.")
IO_DEFERRED = Counter(
    "modeldeploy_slow_io_deferred_total",
    "Slow I/O jobs not started because their ModelDeployment already had its cap running.",
)


@dataclass(frozen=True)
class _Finished:
    at: float
    value: Any = None
    error: BaseException | None = None


class IoPool:
    def __init__(
        self,
        workers: int = 16,
        per_owner: int = 2,
        notify: Callable[[Hashable, bool], None] | None = None,
        keep_seconds: float = 600.0,
    ) -> None:
        if workers < 1 or per_owner < 1:
            raise ValueError("the slow-I/O pool needs at least one worker and a per-owner cap of at least 1")
        self.workers = workers
        self.per_owner = per_owner
        self.notify = notify
        self.keep_seconds = keep_seconds
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slow-io")
        self._lock = threading.Lock()
        self._running: dict[Hashable, dict[str, bool]] = {}  # owner -> job -> urgent
        self._finished: dict[tuple[Hashable, str], _Finished] = {}

    def take(self, owner: Hashable, job: str, work: Callable[[], T], urgent: bool = False) -> T | None:
        """The result of ``job`` if it has finished (handed out once); else start it and return None.

        ``job`` names the work exactly (what, for which revision, for which
        due time): asking again for the same name while it runs starts
        nothing. ``urgent`` results wake their owner in the queue's urgent
        lane. An exception raised by ``work`` is raised here, to the reconcile
        that takes it.
        """
        with self._lock:
            self._expire()
            finished = self._finished.pop((owner, job), None)
            if finished is None:
                running = self._running.setdefault(owner, {})
                if job in running:
                    return None
                if len(running) >= self.per_owner:
                    IO_DEFERRED.inc()
                    return None
                running[job] = urgent
        if finished is not None:
            if finished.error is not None:
                raise finished.error
            return cast(T, finished.value)
        IO_RUNNING.inc()
        self._executor.submit(self._run, owner, job, work)
        return None

    def pending(self, owner: Hashable) -> bool:
        """Whether ``owner`` has a job running (its end will trigger the owner)."""
        with self._lock:
            return bool(self._running.get(owner))

    def forget(self, owner: Hashable) -> None:
        """Drop ``owner``'s finished results (it is gone); running jobs end on their own."""
        with self._lock:
            for key in [k for k in self._finished if k[0] == owner]:
                del self._finished[key]

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run(self, owner: Hashable, job: str, work: Callable[[], Any]) -> None:
        started = time.monotonic()
        finished: _Finished
        try:
            finished = _Finished(time.monotonic(), value=work())
        except Exception as error:  # handed to the reconcile that takes it
            finished = _Finished(time.monotonic(), error=error)
        finally:
            IO_RUNNING.dec()
        logger.debug("%s of %s took %.2fs", job, owner, time.monotonic() - started)
        with self._lock:
            urgent = self._running.get(owner, {}).pop(job, False)
            if not self._running.get(owner):
                self._running.pop(owner, None)
            self._finished[(owner, job)] = finished
        if self.notify is not None:
            self.notify(owner, urgent)

    def _expire(self) -> None:
        horizon = time.monotonic() - self.keep_seconds
        for key in [k for k, f in self._finished.items() if f.at < horizon]:
            del self._finished[key]
