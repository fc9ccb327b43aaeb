"""Standing aside while a higher-priority peer acts (kopf peering, for HA).

kopf pauses its own watch streams when a live peer with a higher priority (or
another with the same priority) appears in the peering object, but our work
queue has timers of its own (step pauses, resyncs, retries) that would keep
reconciling from a cache that no longer moves. So, with ``--peering``, we read
the same peering object every few seconds and apply kopf's rule to our queue:
paused, no reconcile starts, the cache is dropped (it would only go stale), and
once the reconciles that were running have ended the log says so ("paused: no
reconcile running"): from then on this instance writes nothing;
resumed, kopf lists everything afresh, which refills the cache and triggers
the reconciles.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from modeldeploy.kube.client import KubeClient
from modeldeploy.kube.kinds import CLUSTER_KOPF_PEERING, KOPF_PEERING
from modeldeploy.kube.store import Store
from modeldeploy.reconcile.queue import WorkQueue

logger = logging.getLogger("modeldeploy.peering")
POLL_SECONDS = 2.0


def stand_aside(peering: Mapping[str, Any] | None, priority: int, now: datetime) -> bool:
    """kopf's rule: pause when a live peer has a higher priority, or another has the same one."""
    peers = (peering or {}).get("status") or {}
    same = 0
    for info in peers.values():
        if not isinstance(info, Mapping):
            continue
        try:
            seen = datetime.fromisoformat(str(info["lastseen"]).replace("Z", "+00:00"))
            if seen.tzinfo is None:
                seen = seen.replace(tzinfo=UTC)
            alive = seen + timedelta(seconds=float(info.get("lifetime", 60))) > now
            peer_priority = int(info.get("priority", 0))
        except (KeyError, TypeError, ValueError):
            continue
        if not alive:
            continue
        if peer_priority > priority:
            return True
        if peer_priority == priority:
            same += 1
    return same > 1  # our own entry is one of them


async def follow_peering(
    client: KubeClient, name: str, namespace: str | None, priority: int, queue: WorkQueue, store: Store
) -> None:
    kind = KOPF_PEERING if namespace else CLUSTER_KOPF_PEERING
    while True:
        try:
            peering = await asyncio.to_thread(client.get, kind, namespace, name)
        except Exception:
            logger.warning("cannot read the peering object %s", name, exc_info=True)
            peering = None
        if peering is not None:
            aside = stand_aside(peering, priority, datetime.now(UTC))
            if aside and not queue.paused:
                logger.info("pausing: a peer with a higher (or the same) priority is active")
                queue.pause()
                store.clear()
                await queue.drained()
                logger.info("paused: no reconcile running; nothing is written until this instance resumes")
            elif not aside and queue.paused:
                logger.info("resuming: this instance is the active peer")
                queue.resume()
        await asyncio.sleep(POLL_SECONDS)
