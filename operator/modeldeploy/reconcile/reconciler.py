"""One reconcile: observe (from the caches), plan (pure), act (only what differs).

The only clock read in the operator's decision path is here, handed to the
planner as ``now``, in whole seconds as status keeps times. A wake-up the plan
asks for is counted from that whole second, so the part of the second already
gone is taken off it: otherwise every interval (an analysis every 5 s) would run
up to a second late, and half a second on average.

While a measurement of the object runs in the slow-I/O pool, the planner may
ask to be woken at once ("a measurement is due"); the pool's own trigger when
the measurement ends is what matters then, so such a wake-up is put off to at
least ``PENDING_REQUEUE_SECONDS`` instead of spinning on a slow Prometheus.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast

from prometheus_client import Histogram

from modeldeploy.kube.apply import Acted, Actor
from modeldeploy.kube.client import KubeClient
from modeldeploy.kube.kinds import BY_KIND
from modeldeploy.kube.observe import observe
from modeldeploy.kube.store import Store
from modeldeploy.notify.message import Origin
from modeldeploy.notify.outbox import Outbox
from modeldeploy.plan.inputs import PARSED, RevisionState, Subject
from modeldeploy.plan.outputs import FINALIZER, Plan
from modeldeploy.plan.planner import plan
from modeldeploy.plan.schedule import SOONEST_SECONDS
from modeldeploy.reconcile.measure import Measurer
from modeldeploy.reconcile.metrics import export, forget
from modeldeploy.reconcile.relist import CLEANUP_RELIST_SECONDS, relist

logger = logging.getLogger("modeldeploy.reconcile")

PENDING_REQUEUE_SECONDS = 2.0

MAX_PASSES = 4
"""Passes of one reconcile: a pass that writes is followed at once by another, planned from the
answers the writes put in the cache, until one writes nothing. The watch events of those writes
then say nothing new and trigger nothing (:meth:`Store.echoes`), and a step that takes two
passes (a status that starts a stage, then the route it asks for) does not wait for its
ModelDeployment's turn in the work queue in between."""

RECONCILE_SECONDS = Histogram(
    "modeldeploy_reconcile_duration_seconds",
    "Time one reconcile took: observe, plan and act.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Reconciler:
    def __init__(
        self,
        client: KubeClient,
        store: Store,
        measurer: Measurer,
        resync_seconds: float = 300.0,
        clock: Callable[[], datetime] = utcnow,
        outbox: Outbox | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.measurer = measurer
        self.actor = Actor(client, store)
        self.resync_seconds = resync_seconds
        self.clock = clock
        self.outbox = outbox
        self._deleting: dict[Hashable, float] = {}
        """Deleted ModelDeployments still waiting for children: when their children's kinds were
        last listed (or the wait was first seen)."""

    def __call__(self, key: Hashable) -> float | None:
        """Reconcile ``key``: plan and act, and again at once while a pass writes (see MAX_PASSES)."""
        for _ in range(MAX_PASSES):
            outcome = self._pass(key)
            if outcome is None:
                return None
            requeue, acted = outcome
            if not acted.wrote or acted.deleted:
                # Nothing written: the last pass saw every answer. A deletion's watch event triggers.
                return requeue
        return 0.0  # still writing: once more, from the work queue

    def _pass(self, key: Hashable) -> tuple[float | None, Acted] | None:
        namespace, name = cast(tuple[str, str], key)
        body = self.store.get("ModelDeployment", namespace, name)
        if body is None:
            forget(namespace, name)
            self.measurer.forget(key)
            self._deleting.pop(key, None)
            self.actor.forget(namespace, name)
            PARSED.forget(namespace, name)
            return None
        started = time.perf_counter()
        subject = Subject.from_body(body)
        if subject.deleting and FINALIZER in subject.finalizers:
            self._close_gaps(key, subject)
        exact = self.clock()
        now = exact.replace(microsecond=0)
        inputs = self.measurer.inputs(subject, now)
        if self.outbox is not None:
            inputs = replace(
                inputs,
                notification_targets=self.outbox.targets_for(namespace),
                cloud_events=self.outbox.sink_serves(namespace),
            )
        observed = observe(self.store, subject)
        decided = plan(subject, observed, now, inputs)
        acted = self.actor.act(subject, decided, now)
        if decided.notices and self.outbox is not None:
            # Only now: the status that records the notices' keys is written (act raises otherwise).
            model = (subject.spec.get("model") or {}).get("name") or name
            self.outbox.submit(Origin(namespace, name, str(model)), decided.notices)
        export(namespace, name, decided, observed)
        RECONCILE_SECONDS.observe(time.perf_counter() - started)
        _log(subject, decided)
        requeue = self.resync_seconds
        if decided.requeue_after is not None:
            requeue = decided.requeue_after
            # Counted from `now`, a whole second; never brought below the plan's soonest.
            requeue = max(min(requeue, SOONEST_SECONDS), requeue - (exact - now).total_seconds())
            if requeue < PENDING_REQUEUE_SECONDS and self.measurer.pending(subject):
                requeue = PENDING_REQUEUE_SECONDS
            requeue = min(requeue, self.resync_seconds)
        poll = self.measurer.registry_wake(subject)
        return (requeue if poll is None else min(requeue, max(poll, 0.1))), acted

    def _close_gaps(self, key: Hashable, subject: Subject) -> None:
        """List the kinds of children a deletion still waits for, once it has waited a while.

        A child's DELETED event is what lets the deletion go on; one lost in a watch gap would
        hold the finalizer for ever (see :mod:`modeldeploy.reconcile.relist`).
        """
        now = time.monotonic()
        since = self._deleting.setdefault(key, now)
        if now - since < CLEANUP_RELIST_SECONDS:
            return
        self._deleting[key] = now
        for kind in sorted({child["kind"] for child in self.store.children(subject.namespace, subject.name)}):
            relist(self.client, self.store, BY_KIND[kind], subject.namespace, subject.name)

    def urgent(self, key: Hashable) -> bool:
        """Whether users of ``key`` may be losing answers now: its fallback must take traffic.

        True when a fallback that fails over on no Ready replicas is not yet
        active and the stable revision's Deployment (in the cache) has no Ready
        replica, counted as the planner counts them (from the ReplicaSet that
        holds its template, when one does: that is what changes first, and a
        watch event of the Deployment that only copies it triggers nothing).
        Read from the cache's raw objects: this runs on the event loop for every
        trigger, so it parses no spec or status.
        """
        namespace, name = cast(tuple[str, str], key)
        body = self.store.get("ModelDeployment", namespace, name)
        if body is None:
            return False
        fallback = (body.get("spec") or {}).get("fallback")
        status = body.get("status") or {}
        stable = (status.get("stable") or {}).get("revision")
        if not isinstance(fallback, dict) or not stable:
            return False
        if (fallback.get("trigger") or {}).get("noReadyReplicas", True) is False:
            return False
        if ((status.get("operatorState") or {}).get("fallback") or {}).get("active"):
            return False
        deployment = self.store.get("Deployment", namespace, stable)
        if deployment is None:
            return False
        return not RevisionState.from_deployment(deployment, self.store.replica_sets(namespace, stable)).ready


def _log(subject: Subject, decided: Plan) -> None:
    for event in decided.events:
        logger.info(
            "%s",
            event.message,
            extra={
                "namespace": subject.namespace,
                "modeldeployment": subject.name,
                "reason": event.reason,
                "event_type": event.type,
            },
        )
