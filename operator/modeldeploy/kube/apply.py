"""Applying: carrying out a Plan against the API server, writing only what differs.

Each desired object is compared with the cached one first: when everything the
operator sets is already there (server defaults may add more), no request is
made. That comparison, plus status written only when it changed and Events
only on transitions, is what makes an object at rest cost zero writes.

A desired object the server stores in another spelling (``cpu: 1000m`` comes
back as ``1``) would never compare equal; for those we remember the
resourceVersion our last apply produced and skip until someone else changes the
object, so the operator settles instead of re-applying forever.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modeldeploy.api import format_time
from modeldeploy.kube.client import HANDOVER_FIELD_MANAGER, ApiError, KubeClient
from modeldeploy.kube.kinds import BY_KIND, DEPLOYMENT, EVENT, MODEL_DEPLOYMENT
from modeldeploy.kube.store import Store, key_of
from modeldeploy.plan.inputs import Subject
from modeldeploy.plan.outputs import FINALIZER, Event, Plan

REPORTING_INSTANCE = socket.gethostname()

logger = logging.getLogger(__name__)


def contains(desired: Any, actual: Any) -> bool:
    """True when every field in desired is present with the same value in actual.

    Runs for every object of every plan, so a mapping's fields are walked without a generator, and
    a leaf (a string, a number) is compared at once: only what is neither a leaf nor a dict or list, which
    the planner renders and the cache holds, is asked whether it is a Mapping (through ``ABCMeta``).
    """
    if isinstance(desired, _LEAVES):
        return bool(desired == actual)
    if isinstance(desired, (dict, Mapping)):  # dict first: no ABC asked for one
        if not isinstance(actual, (dict, Mapping)):
            return False
        for key, value in desired.items():
            if key not in actual:
                return False
            if isinstance(value, _LEAVES):
                if value != actual[key]:
                    return False
            elif not contains(value, actual[key]):
                return False
        return True
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(desired) != len(actual):
            return False
        return all(contains(d, a) for d, a in zip(desired, actual, strict=True))
    return bool(desired == actual)


_LEAVES = (str, int, float, type(None))  # bool is an int


def status_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning current into desired (removed keys become null)."""
    patch: dict[str, Any] = {}
    for key in set(current) | set(desired):
        if key not in desired:
            patch[key] = None
        elif key not in current:
            patch[key] = desired[key]
        elif isinstance(current[key], Mapping) and isinstance(desired[key], Mapping):
            inner = status_patch(current[key], desired[key])
            if inner:
                patch[key] = inner
        elif current[key] != desired[key]:
            patch[key] = desired[key]
    return patch


class NamespaceTerminating(Exception):
    """The API server refused to create an object: its namespace is being deleted."""


@dataclass(frozen=True)
class Acted:
    """What carrying out one plan did: objects written (the cache holds the answers), objects deleted."""

    wrote: int = 0
    deleted: int = 0


class Actor:
    """Applies plans; remembers which of its applies the server stored in another spelling."""

    def __init__(self, client: KubeClient, store: Store) -> None:
        self.client = client
        self.store = store
        self._settled: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._terminating: dict[tuple[str, str], str] = {}
        """(namespace, name) -> uid of a ModelDeployment whose namespace refused to create one of
        its children because it is being deleted: none is asked for again. While a namespace of
        100 was deleted, re-creating the Services its deletion took cost 1,186 refused requests."""

    def forget(self, namespace: str, name: str) -> None:
        """The ModelDeployment is gone."""
        self._terminating.pop((namespace, name), None)

    def act(self, subject: Subject, plan: Plan, now: datetime) -> Acted:
        # A Deployment that exists gets its count handed over before the apply that stops
        # claiming it (else the server would reset it); a new one right after its creation.
        existing = {n for n, _ in plan.hand_over if self.store.get("Deployment", subject.namespace, n)}
        wrote = 0
        if plan.finalizer is not None:
            finalized = self._finalize(subject, plan.finalizer)
            if finalized is None:
                return Acted()  # gone, or its deletion began: the watch event of that plans again
            wrote += finalized
        for name, replicas in plan.hand_over:
            if name in existing:
                wrote += self._hand_over(subject.namespace, name, replicas)
        owner = (subject.namespace, subject.name)
        doomed = self._terminating.get(owner) == subject.uid
        for obj in plan.apply:
            if doomed and self.store.get(*key_of(obj)) is None:
                continue  # its namespace is being deleted, and nothing can be created in it
            try:
                wrote += self._apply(obj)
            except NamespaceTerminating:
                self._terminating[owner] = subject.uid
                doomed = True
        for name, replicas in plan.hand_over:
            if name not in existing:
                wrote += self._hand_over(subject.namespace, name, replicas)
        for name, replicas in plan.scale:
            wrote += self._scale(subject.namespace, name, replicas)
        for ref in plan.delete:
            self.client.delete(BY_KIND[ref.kind], ref.namespace, ref.name)
        if plan.status is not None:
            wrote += self._write_status(subject, plan.status)
        for event in plan.events:
            self._post_event(subject, event, now)
        return Acted(wrote=wrote, deleted=len(plan.delete))

    def _apply(self, obj: dict[str, Any]) -> int:
        key = key_of(obj)
        current = self.store.get(*key)
        if current is not None and contains(obj, current):
            return 0
        digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()
        if current is not None and self._settled.get(key) == (
            digest,
            current["metadata"].get("resourceVersion", ""),
        ):
            return 0
        try:
            result = self.client.apply(BY_KIND[obj["kind"]], obj)
        except ApiError as error:
            if error.namespace_terminating:
                raise NamespaceTerminating from error  # going away, and everything in it with it
            raise
        self.store.put(result, own=True)
        self._settled[key] = (digest, result["metadata"].get("resourceVersion", ""))
        return 1

    def _scale(self, namespace: str, name: str, replicas: int) -> int:
        current = self.store.get("Deployment", namespace, name)
        if current is not None and current.get("spec", {}).get("replicas") == replicas:
            return 0
        try:
            result = self.client.merge_patch(DEPLOYMENT, namespace, name, {"spec": {"replicas": replicas}})
        except ApiError as error:
            if error.not_found:
                return 0
            raise
        self.store.put(result, own=True)
        return 1

    def _hand_over(self, namespace: str, name: str, replicas: int) -> int:
        """The starting count, written by a field manager of its own that the HPA later takes it from."""
        body = {
            "apiVersion": DEPLOYMENT.api_version,
            "kind": DEPLOYMENT.kind,
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas},
        }
        try:
            result = self.client.apply(DEPLOYMENT, body, field_manager=HANDOVER_FIELD_MANAGER)
        except ApiError as error:
            if error.not_found or error.namespace_terminating:
                return 0
            raise
        self.store.put(result, own=True)
        return 1

    def _finalize(self, subject: Subject, add: bool) -> int | None:
        """Add or remove FINALIZER and leave everyone else's; None when the rest of the plan must
        not be carried out (the object is gone, or its deletion began since it was planned).

        A merge patch of the whole list, made conditional on the resourceVersion it was computed
        from. Someone else's write in between (409) means the cache is behind: read the object
        once and patch again from what the server holds.
        """
        current = self.store.get(MODEL_DEPLOYMENT.kind, subject.namespace, subject.name)
        for attempt in range(2):
            if current is None:
                return None
            meta = current["metadata"]
            finalizers = list(meta.get("finalizers") or ())
            if add and meta.get("deletionTimestamp"):
                return None  # no finalizer may be added now, and no child created
            if (FINALIZER in finalizers) == add:
                return 0
            wanted = [*finalizers, FINALIZER] if add else [f for f in finalizers if f != FINALIZER]
            version = meta.get("resourceVersion")
            patch = {"metadata": {"finalizers": wanted or None, "resourceVersion": version}}
            try:
                result = self.client.merge_patch(MODEL_DEPLOYMENT, subject.namespace, subject.name, patch)
            except ApiError as error:
                if error.not_found:
                    return None
                if not error.conflict or attempt:
                    raise
                current = self.client.get(MODEL_DEPLOYMENT, subject.namespace, subject.name)
                continue
            self.store.put(result, own=True)
            return 1
        return None  # not reached: the second attempt returns or raises

    def _write_status(self, subject: Subject, desired: dict[str, Any]) -> int:
        patch = status_patch(subject.status, desired)
        if not patch:
            return 0
        result = self.client.merge_patch(
            MODEL_DEPLOYMENT, subject.namespace, subject.name, {"status": patch}, subresource="status"
        )
        self.store.put(result, own=True)
        return 1

    def _post_event(self, subject: Subject, event: Event, now: datetime) -> None:
        stamp = format_time(now)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{subject.name}.{uuid.uuid4().hex[:12]}", "namespace": subject.namespace},
            "involvedObject": {
                "apiVersion": MODEL_DEPLOYMENT.api_version,
                "kind": MODEL_DEPLOYMENT.kind,
                "name": subject.name,
                "namespace": subject.namespace,
                "uid": subject.uid,
            },
            "reason": event.reason,
            "message": event.message[:1024],
            "type": event.type,
            "source": {"component": "modeldeploy"},
            "reportingComponent": "modeldeploy",
            "reportingInstance": REPORTING_INSTANCE[:128],
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        # An Event is a courtesy; failing to post one must not fail the reconcile (its status,
        # written just before, records the transition). Events are the operator's only creates:
        # modeldeploy_kube_api_requests_total{verb="create",code} counts every outcome.
        try:
            self.client.create(EVENT, body)
        except (ApiError, OSError) as error:  # refused, or the server unreachable (requests' errors)
            logger.debug(
                "Event %s for %s/%s not posted: %s", event.reason, subject.namespace, subject.name, error
            )
