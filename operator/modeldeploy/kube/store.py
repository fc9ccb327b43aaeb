"""An in-memory cache of the objects the operator watches, like a client-go informer's store.

kopf's watch streams keep it current (every event's body is put here); the
operator's own writes put the API server's answer here at once, so the next
plan sees its own changes without waiting for the watch. Reconciling from this
cache is why an object at rest costs no API reads at all: observing is a
dictionary lookup.

A watch only reports changes. When it breaks off (410 Gone: the resource
version it would resume from is compacted away) and lists again, an object
deleted in the gap is simply absent from the new list: no DELETED event ever
comes. So a list *replaces* the cache's view (:meth:`Store.replace`), as a
client-go informer's ``Replace`` does; otherwise deletion cleanup would wait
for that child forever.

Every reconcile asks for one ModelDeployment's children, so the store keeps
them indexed by owner (namespace and the ``modeldeploy.io/name`` label), as an
informer's indexer does: finding them costs the size of that one family, not
of the whole cache.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from modeldeploy.kube.kinds import DEPLOYMENT, REPLICA_SET
from modeldeploy.plan.inputs import TEMPLATE_DIGEST, template_digest
from modeldeploy.plan.revisions import LABEL_NAME

Key = tuple[str, str, str]  # (kind, namespace, name)
Owner = tuple[str, str]  # (namespace, ModelDeployment name)
Controller = tuple[str, str]  # (namespace, Deployment name)


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj["metadata"]
    return (obj["kind"], meta.get("namespace", ""), meta["name"])


def _resource_version(obj: Mapping[str, Any]) -> int:
    return _version_number(obj["metadata"].get("resourceVersion", "0"))


def _version_number(value: Any) -> int:
    # Opaque by contract; etcd's revision in every API server we know. Not a number: 0, "unknown".
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _owner_of(key: Key, obj: Mapping[str, Any]) -> Owner | None:
    """The ModelDeployment ``obj`` was made for, from its label; None for none (or for one itself)."""
    if key[0] == "ModelDeployment":
        return None
    owner = (obj["metadata"].get("labels") or {}).get(LABEL_NAME)
    return (key[1], owner) if isinstance(owner, str) else None


def _controller_of(key: Key, obj: Mapping[str, Any]) -> Controller | None:
    """The Deployment a ReplicaSet belongs to (its controller ownerReference); None for other kinds."""
    if key[0] != REPLICA_SET.kind:
        return None
    name = controlling_deployment(obj["metadata"])
    return (key[1], name) if name is not None else None


def controlling_deployment(meta: Mapping[str, Any]) -> str | None:
    """The name of the Deployment named as controller in ``meta``'s ownerReferences, if any."""
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller") and ref.get("kind") == "Deployment" and isinstance(ref.get("name"), str):
            return str(ref["name"])
    return None


def _slim(obj: Mapping[str, Any], cached: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the cache keeps of an object, as plain dicts and lists: managedFields never; of a
    ReplicaSet, a digest of its pod template instead of the template; of a Deployment, that
    digest beside its template. Copied without what it drops.

    managedFields are the bulk of a stored object and nothing the operator reads.
    Keys and short strings are interned (:func:`_plain`).
    A ReplicaSet is read only for its Deployment's readiness (its count, its status, and whether
    it holds the Deployment's template: :func:`~modeldeploy.plan.inputs.current_replica_set`),
    which compares the two digests. Either's is taken from ``cached`` (the version the cache
    holds) when that is of the same object and generation: the template is the same, and most
    of their events are their status moving.
    """
    kind = obj.get("kind")
    body: dict[str, Any] = {}
    for key, value in obj.items():
        key = _intern(key)
        if key == "metadata" and isinstance(value, Mapping):
            body[key] = {_intern(k): _plain(v) for k, v in value.items() if k != "managedFields"}
        elif key == "spec" and kind == REPLICA_SET.kind and isinstance(value, Mapping):
            body[key] = {"replicas": value.get("replicas")}
            digest = _same_template(obj, cached) or _digest(value)
            if digest is not None:
                body[key][TEMPLATE_DIGEST] = digest
        elif key == "spec" and kind == DEPLOYMENT.kind and isinstance(value, Mapping):
            body[key] = _plain(value)
            digest = _same_template(obj, cached) or _digest(value)
            if digest is not None:
                body[key][TEMPLATE_DIGEST] = digest
        else:
            body[key] = _plain(value)
    return body


def _digest(spec: Mapping[str, Any]) -> str | None:
    """The :func:`template_digest` of a spec's pod template (kept already, or computed)."""
    if isinstance(spec.get(TEMPLATE_DIGEST), str):  # slimmed already
        return str(spec[TEMPLATE_DIGEST])
    if isinstance(spec.get("template"), Mapping):
        return template_digest(spec["template"])
    return None


def _same_template(obj: Mapping[str, Any], cached: Mapping[str, Any] | None) -> str | None:
    """The cached version's template digest if it is of the same object at the same generation."""
    if cached is None:
        return None
    meta, before = obj.get("metadata") or {}, cached["metadata"]
    generation = meta.get("generation")
    if generation is None or meta.get("uid") is None:
        return None
    if (meta.get("uid"), generation) != (before.get("uid"), before.get("generation")):
        return None
    digest = (cached.get("spec") or {}).get(TEMPLATE_DIGEST)
    return digest if isinstance(digest, str) else None


class Store:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[Key, dict[str, Any]] = {}
        self._by_owner: dict[Owner, dict[Key, None]] = {}  # a family in the order it was cached
        self._by_controller: dict[Controller, dict[Key, None]] = {}  # a Deployment's ReplicaSets
        self._written: dict[Key, int] = {}  # the version of each object the operator's last write made

    def _set(self, key: Key, body: dict[str, Any]) -> None:
        """Hold ``body`` under ``key``, the owner indexes with it (the lock held)."""
        self._written.pop(key, None)
        current = self._objects.get(key)
        before = _owner_of(key, current) if current is not None else None
        after = _owner_of(key, body)
        if before != after:
            _leave(self._by_owner, before, key)
        was = _controller_of(key, current) if current is not None else None
        controller = _controller_of(key, body)
        if was != controller:
            _leave(self._by_controller, was, key)
        self._objects[key] = body
        if after is not None and before != after:
            self._by_owner.setdefault(after, {})[key] = None
        if controller is not None and was != controller:
            self._by_controller.setdefault(controller, {})[key] = None

    def _unset(self, key: Key) -> dict[str, Any] | None:
        """Drop ``key`` and its place in the owner indexes (the lock held); what it held."""
        self._written.pop(key, None)
        current = self._objects.pop(key, None)
        if current is not None:
            _leave(self._by_owner, _owner_of(key, current), key)
            _leave(self._by_controller, _controller_of(key, current), key)
        return current

    def put(self, obj: Mapping[str, Any], own: bool = False) -> None:
        """Keep obj unless the store already holds a newer version of it (a late watch event).

        ``own``: obj is the API server's answer to the operator's own write; its
        watch event, when it comes, is an echo (:meth:`echoes`).
        """
        key = key_of(obj)
        body = _slim(obj, self.get(*key))
        with self._lock:
            current = self._objects.get(key)
            if current is not None and _resource_version(current) > _resource_version(body) > 0:
                return
            self._set(key, body)
            version = _resource_version(body)
            if own and version > 0:
                self._written[key] = version

    def echoes(self, kind: str, namespace: str, name: str, resource_version: Any) -> bool:
        """Whether a watch event brings exactly the version the operator's own last write made.

        That version is cached already, put there by the write itself, and the
        reconcile that wrote it planned again from it before it ended: the event
        says nothing new. Any other version (someone else's change, even one the
        write's answer already held) is news.
        """
        version = _version_number(resource_version)
        with self._lock:
            return version > 0 and self._written.get((kind, namespace, name)) == version

    def holds_newer(self, kind: str, namespace: str, name: str, resource_version: Any) -> bool:
        """Whether the cache holds a later version than a watch event brings.

        Versions of one object come in order on its watch, so the later one was
        put by something else: the operator's own write (the reconcile that made
        it planned again from its answer) or a list (whose later version the
        watch still brings). Either way the older event says nothing new.
        """
        version = _version_number(resource_version)
        with self._lock:
            current = self._objects.get((kind, namespace, name))
            return version > 0 and current is not None and _resource_version(current) > version

    def holds_older(self, kind: str, namespace: str, name: str, resource_version: Any) -> bool:
        """Whether the cache holds an earlier version than a watch event brings (one it will replace)."""
        version = _version_number(resource_version)
        with self._lock:
            current = self._objects.get((kind, namespace, name))
            return current is not None and 0 < _resource_version(current) < version

    def replace(
        self,
        kind: str,
        listed: Iterable[Mapping[str, Any]],
        resource_version: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Make the cached view of ``kind`` what a list at ``resource_version`` saw; return what went.

        The view is the objects of ``kind`` in ``namespace`` (None: all) that
        carry every one of ``labels``, the scope the list asked for. Listed
        objects are put (a newer cached version still wins). A cached object
        in scope that the list did not hold was deleted, and is removed,
        unless it is newer than the list: then a watch event brought it after
        the list was taken, and it stays.
        """
        bodies = [_slim(obj, self.get(*key_of(obj))) for obj in listed]
        seen = {key_of(body) for body in bodies}
        list_version = _version_number(resource_version)
        removed: list[dict[str, Any]] = []
        with self._lock:
            for body in bodies:
                key = key_of(body)
                current = self._objects.get(key)
                if current is None or not _resource_version(current) > _resource_version(body) > 0:
                    self._set(key, body)
            for key, obj in list(self._objects.items()):
                if key[0] != kind or key in seen or (namespace is not None and key[1] != namespace):
                    continue
                own = obj["metadata"].get("labels") or {}
                if labels and any(own.get(k) != v for k, v in labels.items()):
                    continue
                if list_version and _resource_version(obj) > list_version:
                    continue
                gone = self._unset(key)
                assert gone is not None
                removed.append(gone)
        return removed

    def remove(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._unset((kind, namespace, name))

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._objects.get((kind, namespace, name))

    def children(self, namespace: str, owner: str) -> list[dict[str, Any]]:
        """Every cached object labelled as made for ModelDeployment ``owner``."""
        with self._lock:
            return [self._objects[key] for key in self._by_owner.get((namespace, owner), ())]

    def replica_sets(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        """Every cached ReplicaSet that Deployment ``deployment`` controls."""
        with self._lock:
            return [self._objects[key] for key in self._by_controller.get((namespace, deployment), ())]

    def clear(self) -> None:
        with self._lock:
            self._written.clear()
            self._objects.clear()
            self._by_owner.clear()
            self._by_controller.clear()

    def keys(self, kind: str) -> Iterator[Key]:
        with self._lock:
            found = [key for key in self._objects if key[0] == kind]
        return iter(found)

    def __len__(self) -> int:
        return len(self._objects)


def _leave(index: dict[Any, dict[Key, None]], owner: Any, key: Key) -> None:
    if owner is None or owner not in index:
        return
    family = index[owner]
    family.pop(key, None)
    if not family:
        del index[owner]


INTERNED_LENGTH = 64
"""Strings up to this long are interned in the cache's copies: keys, label values, names, phases."""


def _plain(value: Any) -> Any:
    """``value`` as plain dicts and lists, its keys and short strings interned.

    Every cached object repeats the same keys ("metadata", "labels", "containers",
    "readinessProbe") and most of the same short values ("modeldeploy", "True",
    "IfNotPresent"); decoded from JSON, each object holds its own copy of each. Interned,
    the cache holds one: a Deployment as the API server returns it takes 6.5 kB in the
    cache instead of 14.7 kB (tracemalloc, a thousand Deployments).
    """
    if isinstance(value, dict):  # first: plain dicts and strings are nearly all of a body
        return {_intern(k): _plain(v) for k, v in value.items()}
    if isinstance(value, str):
        return sys.intern(value) if len(value) <= INTERNED_LENGTH else value
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):  # an ABC check, several times slower: kopf's views
        return {_intern(k): _plain(v) for k, v in value.items()}
    return value


_SCALARS = (int, float, type(None))


def _intern(key: Any) -> Any:
    return sys.intern(key) if isinstance(key, str) else key
