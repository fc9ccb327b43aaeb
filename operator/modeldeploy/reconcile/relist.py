"""Closing watch gaps: list a child kind again and let the list replace the cache's view.

kopf resumes a broken watch by listing again (after 410 Gone, or when the
connection could not be resumed), and hands us the listed objects as events of
type None; an object deleted during the gap is just not among them, and its
DELETED event never comes (see :mod:`modeldeploy.kube.store`). kopf does not
tell handlers where a listing ends, so the operator takes its own list of the
kind once kopf's listing is seen to start again (:class:`ListingWatch`) and
lets it replace the cache's view (:meth:`Store.replace`): whatever the cache
still holds that the list does not was deleted in the gap. The same holds for
ModelDeployments themselves: one deleted in a gap leaves the cache, and its
next reconcile forgets it.

A listing that holds no object of ours at all reaches no handler, so it cannot
be seen; the reconcile of a deleted ModelDeployment therefore also lists the
kinds it is still waiting for, for that ModelDeployment only, once it has waited
a while (:data:`CLEANUP_RELIST_SECONDS`): a deleted child never holds a
finalizer forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from modeldeploy.kube.client import Kind, KubeClient
from modeldeploy.kube.kinds import MODEL_DEPLOYMENT
from modeldeploy.kube.store import Store
from modeldeploy.plan.revisions import LABEL_MANAGED_BY, LABEL_NAME, MANAGED_BY

LISTING_GAP_SECONDS = 5.0
"""Listing events further apart than this belong to different listings (kopf listed again)."""

RELIST_DELAY_SECONDS = 2.0
"""How long after a new listing starts our own list is taken (kopf's listing is done by then)."""

CLEANUP_RELIST_SECONDS = 5.0
"""A deletion still waiting for children lists their kinds again at most this often."""


def relist(
    client: KubeClient, store: Store, kind: Kind, namespace: str | None = None, owner: str | None = None
) -> set[tuple[str, str]]:
    """List ``kind`` (ours only; in ``namespace``, of ``owner`` when given) into the store.

    Returns the (namespace, ModelDeployment) of every child the list showed
    gone, or of every ModelDeployment gone, so that each is reconciled again.
    """
    labels: dict[str, str] = {}
    if kind != MODEL_DEPLOYMENT:
        labels[LABEL_MANAGED_BY] = MANAGED_BY
        if owner is not None:
            labels[LABEL_NAME] = owner
    selector = ",".join(f"{key}={value}" for key, value in labels.items()) or None
    listed, version = client.list_with_version(kind, namespace, selector)
    removed = store.replace(
        kind.kind,
        ({**item, "apiVersion": kind.api_version, "kind": kind.kind} for item in listed),
        version,
        namespace=namespace,
        labels=labels or None,
    )
    owners = set()
    for obj in removed:
        meta = obj["metadata"]
        name = meta["name"] if kind == MODEL_DEPLOYMENT else (meta.get("labels") or {}).get(LABEL_NAME)
        if name:
            owners.add((meta.get("namespace", ""), name))
    return owners


class ListingWatch:
    """Notices kopf listing a kind again, from the timing of its listing events (type None).

    The first listing of a kind, right after start-up, filled an empty cache
    and needs nothing. A listing event that comes more than ``gap`` seconds
    after the previous one of its kind (or after start-up, for a kind that had
    nothing of ours to list then) starts a new listing: :meth:`saw` returns
    True once for it.
    """

    def __init__(self, gap: float = LISTING_GAP_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.gap = gap
        self.clock = clock
        self._started = clock()
        self._last: dict[str, float] = {}

    def saw(self, kind: str, event_type: str | None) -> bool:
        """Record one watch event of ``kind``; True when it starts a listing after the first."""
        if event_type is not None:
            return False
        now = self.clock()
        previous = self._last.get(kind, self._started)
        self._last[kind] = now
        return now - previous > self.gap


def relist_all(
    client: KubeClient, store: Store, kind: Kind, namespaces: Iterable[str] = ()
) -> set[tuple[str, str]]:
    """relist() over the namespaces the operator watches (none given: cluster-wide)."""
    owners: set[tuple[str, str]] = set()
    for namespace in tuple(namespaces) or (None,):
        owners |= relist(client, store, kind, namespace)
    return owners
