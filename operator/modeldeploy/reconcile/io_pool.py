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

- ``workers`` threads in all (started as needed);
- at most ``per_owner`` jobs of one ModelDeployment, and ``per_namespace``
  jobs of one namespace (one tenant, however many ModelDeployments it
  creates), running or waiting for a thread at once. A job over its owner's
  cap is not kept: it is asked for again at the reconcile that the end of one
  of the owner's jobs triggers. A job over its namespace's cap waits in that
  namespace's line (urgent ones first, then in the order asked) and starts
  when a job of the namespace ends; its own end wakes its owner, as any job's.
  So the end of one job starts one job, however many ModelDeployments of the
  namespace wait: it does not wake them all to ask again (with a thousand
  canaries in one namespace, that was a thousand reconciles per query). A
  hung job holds a thread of its own tenant's share only, and as long as
  fewer than ``workers // per_namespace`` namespaces hang at once, no other
  job waits for a thread at all;
- urgent jobs (fallback trigger measurements) are started before the others
  whenever jobs do wait for a thread.

A job's end wakes its owner in the work queue's urgent lane when the job was
urgent, or when its result says so (``wake_urgently``: an analysis whose
failing measurement rolls the candidate back), so the reconcile that moves
traffic off a failing candidate does not wait behind routine work.

A job can also be planned (:meth:`IoPool.plan`): started by the pool's own
timer at a given time, as if a reconcile had asked for it then. The next round
of a canary's analysis is planned so: it starts when due, not when its
ModelDeployment's turn in the work queue comes, and its end is what wakes the
reconcile. Whichever comes first, the timer or a reconcile asking for the same
job, starts it; it runs once. A planned job may also say what follows it
(``then``): when it ends, the pool plans its successor itself, before it wakes
the owner. So a canary's rounds keep their interval while its reconciles wait
behind hundreds of rollbacks in the work queue's urgent lane; the reconcile
takes the rounds that have ended when its turn comes. A chain stops when its
result says so (``then`` returns None), when its owner plans anew or is
forgotten, and after MAX_UNTAKEN successors whose results woke the owner and
were not taken (its stage ended some other way: nobody asks for its rounds any
more).

A planned job may also say of its result that it is ``quiet``: nothing its
owner would act on (a passing round of analysis that repeats what status
says). Then, once its successor is planned, its end wakes nobody: the result
waits in the pool and is taken, in order, by the reconcile that a later
result, or anything else, wakes. So a thousand canaries measured every 5 s are
not two hundred reconciles a second that each find nothing to do. A quiet
result whose successor cannot be planned wakes its owner as any result does,
so every chain ends with a wake-up.

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

import heapq
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

from prometheus_client import Counter, Gauge

logger = logging.getLogger(__name__)

T = TypeVar("T")

IO_RUNNING = Gauge("modeldeploy_slow_io_running", "Slow I/O jobs (warm-up, webhook, queries) running now.")
PLANNED_STARTS = Counter(
    "modeldeploy_slow_io_planned_starts_total",
    "Slow I/O jobs started by the pool's own timer: no reconcile had asked for them by their time.",
)
IO_DEFERRED = Counter(
    "modeldeploy_slow_io_deferred_total",
    "Slow I/O jobs not started at once because their ModelDeployment or namespace already had its cap "
    "running (an owner's are asked for again, a namespace's wait in its line).",
)
QUIET_RESULTS = Counter(
    "modeldeploy_slow_io_quiet_total",
    "Results of planned jobs that woke nobody: nothing to act on (a passing round of analysis that "
    "repeats status), taken with the next result that does wake the ModelDeployment.",
)
IO_LINED = Gauge(
    "modeldeploy_slow_io_lined",
    "Slow I/O jobs waiting in their namespace's line for one of its jobs to end.",
)

Job = tuple[Hashable, str, Callable[[], Any]]

MAX_UNTAKEN = 3
"""Successors the pool plans one after another after results that woke their owner while none of
those is taken; then the chain stops. (Quiet results wake nobody, so they do not count.)"""


@dataclass(frozen=True)
class Plan:
    """A job for the pool's timer: what :meth:`IoPool.plan` takes, and what a ``then`` returns."""

    job: str
    work: Callable[[], Any]
    delay: float
    wake_urgently: Callable[[Any], bool] | None = None
    then: Callable[[Any], Plan | None] | None = None
    """Given the job's result, the job to plan after it (None: nothing)."""
    quiet: Callable[[Any], bool] | None = None
    """Given the job's result, whether its owner may sleep on it (see the module's docstring)."""


@dataclass(frozen=True)
class _Planned:
    sequence: int
    job: str
    work: Callable[[], Any]
    wake_urgently: Callable[[Any], bool] | None
    then: Callable[[Any], Plan | None] | None
    quiet: Callable[[Any], bool] | None


@dataclass(frozen=True)
class _Chain:
    """What follows a planned job that has started: its plan's sequence, and its ``then`` and ``quiet``."""

    sequence: int
    then: Callable[[Any], Plan | None]
    quiet: Callable[[Any], bool] | None


@dataclass(frozen=True)
class _Finished:
    at: float
    value: Any = None
    error: BaseException | None = None
    chained: bool = False
    """Started from a plan that says what follows it."""


class IoPool:
    def __init__(
        self,
        workers: int = 32,
        per_owner: int = 2,
        per_namespace: int = 4,
        notify: Callable[[Hashable, bool], None] | None = None,
        keep_seconds: float = 600.0,
    ) -> None:
        if workers < 1 or per_owner < 1 or per_namespace < 1:
            raise ValueError("the slow-I/O pool needs at least one worker and caps of at least 1")
        self.workers = workers
        self.per_owner = per_owner
        self.per_namespace = per_namespace
        self.notify = notify
        self.keep_seconds = keep_seconds
        self._lock = threading.Lock()
        self._work_waiting = threading.Condition(self._lock)
        self._lanes: tuple[deque[Job], deque[Job]] = (deque(), deque())  # urgent, normal
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._closed = False
        # owner -> job -> urgent, or what says so of its result (running or waiting)
        self._running: dict[Hashable, dict[str, bool | Callable[[Any], bool]]] = {}
        self._per_namespace: dict[Hashable, int] = {}
        # namespace -> its line (urgent, normal) of jobs over its cap; their start, by (owner, job)
        self._lines: dict[Hashable, tuple[deque[tuple[Hashable, str]], deque[tuple[Hashable, str]]]] = {}
        self._lined: dict[tuple[Hashable, str], Callable[[], Any]] = {}
        self._finished: dict[tuple[Hashable, str], _Finished] = {}
        self._planned: dict[Hashable, _Planned] = {}  # owner -> the job its timer starts
        self._latest: dict[Hashable, int] = {}  # owner -> the sequence of its newest plan
        self._chains: dict[tuple[Hashable, str], _Chain] = {}
        # owner -> successors of wake-ups since it took a chained result
        self._untaken: dict[Hashable, int] = {}
        self._timetable: list[tuple[float, int, Hashable]] = []  # (when, sequence, owner), a heap
        self._sequence = 0
        self._time_changed = threading.Condition(self._lock)
        self._clock_thread: threading.Thread | None = None
        self._next_expiry = 0.0

    def take(
        self,
        owner: Hashable,
        job: str,
        work: Callable[[], T],
        urgent: bool = False,
        wake_urgently: Callable[[T], bool] | None = None,
    ) -> T | None:
        """The result of ``job`` if it has finished (handed out once); else start it and return None.

        ``job`` names the work exactly (what, for which revision, for which
        due time): asking again for the same name while it runs starts
        nothing. ``urgent`` jobs start first and their results wake their
        owner in the queue's urgent lane; so do the results that
        ``wake_urgently`` says so of (an error never). An exception raised by
        ``work`` is raised here, to the reconcile that takes it.
        """
        with self._lock:
            self._expire()
            finished = self._finished.pop((owner, job), None)
            planned = self._planned.get(owner)
            if planned is not None and planned.job == job:
                del self._planned[owner]  # asked for before its time: started (or handed out) now
            else:
                planned = None
            if finished is None:
                if self._start(owner, job, work, urgent, wake_urgently) and planned is not None:
                    self._chain(owner, planned)
                return None
            if finished.chained:
                self._untaken.pop(owner, None)
        if finished.error is not None:
            raise finished.error
        return cast(T, finished.value)

    def plan(
        self,
        owner: Hashable,
        job: str,
        work: Callable[[], T],
        delay: float,
        wake_urgently: Callable[[T], bool] | None = None,
        then: Callable[[T], Plan | None] | None = None,
        quiet: Callable[[T], bool] | None = None,
    ) -> None:
        """Start ``job`` by itself ``delay`` seconds from now, as if a reconcile asked for it then.

        What a reconcile would start when the job falls due (the next round of a
        canary's analysis) starts on the pool's own timer instead, so it starts on
        time however long the work queue is, and it is its result that wakes the
        owner. One plan per owner: a newer one replaces it. A reconcile that asks
        for the job before its time starts it then (the plan is dropped); a start
        that the owner's cap refuses at its time wakes the owner, whose reconcile asks again.
        ``then``, given the job's result, names the job to plan after it: planned
        when the job ends, before its owner is woken (see MAX_UNTAKEN); ``quiet``, given
        the result, whether the owner need not be woken for it once that is planned.
        """
        with self._lock:
            self._untaken.pop(owner, None)
            self._plan(owner, Plan(job, work, delay, wake_urgently, then, quiet))

    def _plan(self, owner: Hashable, plan: Plan) -> None:
        """Put ``plan`` on the timetable as ``owner``'s newest plan (the lock held)."""
        if self._closed:
            return
        self._sequence += 1
        at = time.monotonic() + max(0.0, plan.delay)
        self._planned[owner] = _Planned(
            self._sequence, plan.job, plan.work, plan.wake_urgently, plan.then, plan.quiet
        )
        self._latest[owner] = self._sequence
        heapq.heappush(self._timetable, (at, self._sequence, owner))
        if self._clock_thread is None:
            self._clock_thread = threading.Thread(target=self._keep_time, name="slow-io-timer", daemon=True)
            self._clock_thread.start()
        elif self._timetable[0][1] == self._sequence:
            self._time_changed.notify()

    def _chain(self, owner: Hashable, planned: _Planned) -> None:
        """Remember what follows a planned job that has started (the lock held)."""
        if planned.then is not None:
            self._chains[(owner, planned.job)] = _Chain(planned.sequence, planned.then, planned.quiet)

    def planned(self, owner: Hashable) -> str | None:
        """The job planned to start by itself for ``owner``, if any."""
        with self._lock:
            entry = self._planned.get(owner)
            return entry.job if entry is not None else None

    def _start(
        self,
        owner: Hashable,
        job: str,
        work: Callable[[], Any],
        urgent: bool,
        wake: Callable[[Any], bool] | None,
    ) -> bool:
        """Queue ``job`` for a thread, or in its namespace's line, unless the pool holds it already
        (the lock held); False if the owner's cap refuses it."""
        namespace = _namespace(owner)
        running = self._running.get(owner, {})
        if job in running or self._closed:
            return True
        if len(running) >= self.per_owner:
            IO_DEFERRED.inc()
            return False
        self._running.setdefault(owner, {})[job] = urgent or wake or False
        if self._per_namespace.get(namespace, 0) >= self.per_namespace:
            IO_DEFERRED.inc()
            IO_LINED.inc()
            self._lined[(owner, job)] = work
            self._lines.setdefault(namespace, (deque(), deque()))[0 if urgent else 1].append((owner, job))
            return True
        self._queue(owner, job, work, urgent)
        return True

    def _queue(self, owner: Hashable, job: str, work: Callable[[], Any], urgent: bool) -> None:
        """Hand a job its namespace's cap admits to the threads (the lock held)."""
        namespace = _namespace(owner)
        self._per_namespace[namespace] = self._per_namespace.get(namespace, 0) + 1
        self._lanes[0 if urgent else 1].append((owner, job, work))
        if self._idle == 0 and len(self._threads) < self.workers:
            thread = threading.Thread(target=self._serve, name=f"slow-io-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()
        else:
            self._work_waiting.notify()

    def _next_in_line(self, namespace: Hashable) -> None:
        """Start the first job of ``namespace``'s line, now that one of its jobs has ended (the lock held)."""
        lines = self._lines.get(namespace)
        while lines is not None and (lines[0] or lines[1]):
            urgent = bool(lines[0])
            owner, job = (lines[0] or lines[1]).popleft()
            work = self._lined.pop((owner, job), None)
            if work is None:
                continue  # its owner was forgotten
            IO_LINED.dec()
            self._queue(owner, job, work, urgent)
            break
        if lines is not None and not (lines[0] or lines[1]):
            del self._lines[namespace]

    def _keep_time(self) -> None:
        """Start each planned job at its time; wake the owners of those their own cap refuses."""
        while True:
            refused: list[Hashable] = []
            with self._lock:
                while not refused:
                    if self._closed:
                        return
                    now = time.monotonic()
                    while self._timetable and self._timetable[0][0] <= now:
                        _, sequence, owner = heapq.heappop(self._timetable)
                        entry = self._planned.get(owner)
                        if entry is None or entry.sequence != sequence:
                            continue  # replaced, taken over or forgotten
                        del self._planned[owner]
                        PLANNED_STARTS.inc()
                        if (owner, entry.job) in self._finished:
                            continue
                        if self._start(owner, entry.job, entry.work, False, entry.wake_urgently):
                            self._chain(owner, entry)
                        else:
                            refused.append(owner)
                    if not refused:
                        self._time_changed.wait(self._timetable[0][0] - now if self._timetable else None)
            if self.notify is not None:
                for owner in refused:
                    self.notify(owner, False)

    def holds(self, owner: Hashable, job: str) -> bool:
        """Whether ``job`` of ``owner`` is running, waiting for a thread, or finished and not yet taken."""
        with self._lock:
            return job in self._running.get(owner, {}) or (owner, job) in self._finished

    def pending(self, owner: Hashable) -> bool:
        """Whether ``owner`` has a job running (its end will trigger the owner)."""
        with self._lock:
            return bool(self._running.get(owner))

    def forget(self, owner: Hashable) -> None:
        """Drop ``owner``'s finished results and the jobs it has in line (it is gone); running jobs
        end on their own."""
        with self._lock:
            for key in [k for k in self._finished if k[0] == owner]:
                del self._finished[key]
            running = self._running.get(owner, {})
            for key in [k for k in self._lined if k[0] == owner]:
                del self._lined[key]
                running.pop(key[1], None)
                IO_LINED.dec()
            if owner in self._running and not running:
                del self._running[owner]
            self._planned.pop(owner, None)
            self._latest.pop(owner, None)
            self._untaken.pop(owner, None)

    def shutdown(self) -> None:
        """Start nothing more; jobs running end on their own (the threads are daemons)."""
        with self._lock:
            self._closed = True
            self._lanes[0].clear()
            self._lanes[1].clear()
            IO_LINED.dec(len(self._lined))
            self._lines.clear()
            self._lined.clear()
            self._planned.clear()
            self._latest.clear()
            self._work_waiting.notify_all()
            self._time_changed.notify_all()

    def _serve(self) -> None:
        while True:
            with self._lock:
                while not (self._lanes[0] or self._lanes[1] or self._closed):
                    self._idle += 1
                    self._work_waiting.wait()
                    self._idle -= 1
                if self._closed:
                    return
                owner, job, work = (self._lanes[0] or self._lanes[1]).popleft()
            self._run(owner, job, work)

    def _run(self, owner: Hashable, job: str, work: Callable[[], Any]) -> None:
        started = time.monotonic()
        IO_RUNNING.inc()
        finished: _Finished
        try:
            finished = _Finished(time.monotonic(), value=work())
        except Exception as error:  # handed to the reconcile that takes it
            finished = _Finished(time.monotonic(), error=error)
        finally:
            IO_RUNNING.dec()
        logger.debug("%s of %s took %.2fs", job, owner, time.monotonic() - started)
        namespace = _namespace(owner)
        with self._lock:
            wake = self._running.get(owner, {}).pop(job, False)
            if not self._running.get(owner):
                self._running.pop(owner, None)
            self._per_namespace[namespace] -= 1
            if not self._per_namespace[namespace]:
                del self._per_namespace[namespace]
            if not self._closed:
                self._next_in_line(namespace)
            chain = self._chains.pop((owner, job), None)
            self._finished[(owner, job)] = replace(finished, chained=chain is not None)
        urgent = wake is True or (
            callable(wake) and finished.error is None and _says_so(wake, finished.value)
        )
        if chain is not None and finished.error is None:
            quiet = (
                not urgent
                and chain.quiet is not None
                and _says_so(chain.quiet, finished.value, "whether a result is quiet")
            )
            if self._plan_successor(owner, chain, finished.value, woke=not quiet) and quiet:
                QUIET_RESULTS.inc()
                return  # taken with the next result that wakes the owner
        if self.notify is not None:
            self.notify(owner, urgent)

    def _plan_successor(self, owner: Hashable, chain: _Chain, value: Any, woke: bool) -> bool:
        """Plan what follows a chained job, unless its owner has planned anew since, or took none of
        the last MAX_UNTAKEN successors of results that woke it (``woke``: this one does). Whether
        it planned one."""
        with self._lock:
            if self._latest.get(owner) != chain.sequence or self._untaken.get(owner, 0) >= MAX_UNTAKEN:
                return False
        try:
            successor = chain.then(value)
        except Exception:  # the chain ends; the owner's reconcile plans the next job
            logger.exception("cannot tell which job follows %s", owner)
            return False
        if successor is None:
            return False
        with self._lock:
            if self._latest.get(owner) != chain.sequence:  # planned anew meanwhile
                return False
            if woke:
                self._untaken[owner] = self._untaken.get(owner, 0) + 1
            self._plan(owner, successor)
            return True

    def _expire(self) -> None:
        """Drop the results older than keep_seconds. Each look goes through every result held and
        every take asks, so it looks at most once a second (or once per keep_seconds, if shorter)."""
        now = time.monotonic()
        if now < self._next_expiry:
            return
        self._next_expiry = now + min(1.0, self.keep_seconds)
        horizon = now - self.keep_seconds
        for key in [k for k, f in self._finished.items() if f.at < horizon]:
            del self._finished[key]


def _says_so(judge: Callable[[Any], bool], value: Any, what: str = "whether a result is urgent") -> bool:
    """What ``judge`` says of ``value``; False when it cannot tell (a normal wake-up, never a lost result)."""
    try:
        return bool(judge(value))
    except Exception:
        logger.exception("cannot tell %s; waking its owner normally", what)
        return False


def _namespace(owner: Hashable) -> Hashable:
    """The tenant an owner belongs to: its namespace, for (namespace, name) keys."""
    return owner[0] if isinstance(owner, tuple) and owner else owner
