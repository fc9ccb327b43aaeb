"""Kubernetes Events, posted by a thread of their own: a reconcile never waits for one.

A transition is recorded twice (DESIGN's rule 5): in status, which the
planner, ``kubectl get`` and every tool read, and as an Event, which people
read. The status write is what a reconcile must wait for; the Event is a
courtesy (a failure to post one never failed a reconcile). Posted inline, the
Event was a quarter of the requests of a rollback: when a thousand canaries
breached within one analysis interval, every rollback's worker waited for its
Event before the next rollback could start.

So :class:`EventPoster` does what client-go's event broadcaster does: a
reconcile builds the Event (its timestamps are the transition's) and queues
it without blocking; one daemon thread posts the queue in order. The queue is
bounded (1,000, client-go's channel size): when the API server falls that far
behind, a new Event is dropped rather than the operator's memory grown.
On shutdown what is queued is posted within a deadline. Every outcome is
counted in ``modeldeploy_kube_events_total{outcome}``: ``posted``,
``failed`` (the API server refused it or could not be reached), ``dropped``
(the queue was full).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from prometheus_client import Counter

from modeldeploy.kube.client import ApiError, KubeClient
from modeldeploy.kube.kinds import EVENT

logger = logging.getLogger(__name__)

EVENTS = Counter(
    "modeldeploy_kube_events",
    "Kubernetes Events the operator recorded, by outcome: posted, failed (refused or unreachable), "
    "dropped (the queue was full).",
    ["outcome"],
)
for _outcome in ("posted", "failed", "dropped"):
    EVENTS.labels(_outcome)

CAPACITY = 1000


class EventPoster:
    """A bounded queue of Event bodies and the thread that posts them, in the order queued."""

    def __init__(self, client: KubeClient, capacity: int = CAPACITY) -> None:
        self.client = client
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._run, name="kube-events", daemon=True)

    def __call__(self, body: dict[str, Any]) -> None:
        """Queue ``body`` for posting; returns at once."""
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            EVENTS.labels("dropped").inc()
            logger.warning(
                "Event %s/%s dropped: %d Events are waiting to be posted",
                body["metadata"]["namespace"],
                body["reason"],
                self._queue.maxsize,
            )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Post what is queued (within ``timeout``), then end the thread."""
        if not self._thread.is_alive():
            return
        finish = time.monotonic() + timeout
        while True:
            try:
                self._queue.put(None, timeout=max(0.0, finish - time.monotonic()))
                break
            except queue.Full:
                if time.monotonic() >= finish:
                    return  # the thread is a daemon: what is left goes with the process
        self._thread.join(max(0.0, finish - time.monotonic()))

    def _run(self) -> None:
        while (body := self._queue.get()) is not None:
            try:
                post(self.client, body)
            except Exception:  # the thread must outlive any one Event
                EVENTS.labels("failed").inc()
                logger.exception("Event %s/%s not posted", body["metadata"]["namespace"], body["reason"])


def post(client: KubeClient, body: dict[str, Any]) -> None:
    """Post one Event now; a failure is counted and logged, never raised."""
    try:
        client.create(EVENT, body)
    except (ApiError, OSError) as error:
        EVENTS.labels("failed").inc()
        logger.debug("Event %s/%s not posted: %s", body["metadata"]["namespace"], body["reason"], error)
        return
    EVENTS.labels("posted").inc()
