"""An in-memory cache of the objects the operator watches, like a client-go informer's store.

kopf's watch streams keep it current (every event's body is put here); the
operator's own writes put the API server's answer here at once, so the next
plan sees its own changes without waiting for the watch. Reconciling from this
cache is why an object at rest costs no API reads at all: observing is a
dictionary lookup.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from modeldeploy.plan.revisions import LABEL_NAME

Key = tuple[str, str, str]  # (kind, namespace, name)


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj["metadata"]
    return (obj["kind"], meta.get("namespace", ""), meta["name"])


def _resource_version(obj: Mapping[str, Any]) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion", "0"))
    except (TypeError, ValueError):
        return 0


class Store:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[Key, dict[str, Any]] = {}

    def put(self, obj: Mapping[str, Any]) -> None:
        """Keep obj unless the store already holds a newer version of it (a late watch event)."""
        body = _plain(obj)
        # managedFields are the bulk of a stored object and nothing the operator reads.
        body.get("metadata", {}).pop("managedFields", None)
        key = key_of(body)
        with self._lock:
            current = self._objects.get(key)
            if current is not None and _resource_version(current) > _resource_version(body) > 0:
                return
            self._objects[key] = body

    def remove(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._objects.pop((kind, namespace, name), None)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._objects.get((kind, namespace, name))

    def children(self, namespace: str, owner: str) -> list[dict[str, Any]]:
        """Every cached object labelled as made for ModelDeployment ``owner``."""
        with self._lock:
            return [
                obj
                for (kind, ns, _), obj in self._objects.items()
                if ns == namespace
                and obj["metadata"].get("labels", {}).get(LABEL_NAME) == owner
                and kind != "ModelDeployment"
            ]

    def clear(self) -> None:
        with self._lock:
            self._objects.clear()

    def keys(self, kind: str) -> Iterator[Key]:
        with self._lock:
            found = [key for key in self._objects if key[0] == kind]
        return iter(found)

    def __len__(self) -> int:
        return len(self._objects)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
