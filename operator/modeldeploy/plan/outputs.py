"""The planner's output, as plain frozen values: the Plan the act step carries out.

``Plan`` is everything one reconcile must do: objects to server-side apply,
Deployments to scale, objects to delete (``ObjectRef``), the new status,
``Event``s, and when to look again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from modeldeploy.api import NotificationEvent

FINALIZER = "modeldeploy.io/cleanup"


@dataclass(frozen=True)
class ObjectRef:
    """Which object: apiVersion, kind, namespace and name (what a deletion needs)."""

    api_version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectRef:
        meta = obj["metadata"]
        return cls(obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the ModelDeployment: a transition people should see (rule 5)."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Notice:
    """One transition for notification targets and the CloudEvents sink, with the facts a message needs.

    Made by the planner from its typed decisions (never from an Event's text).
    Invariant: ``key`` names this transition uniquely and is written to
    ``status.operatorState.notified`` by the same status write that records the
    transition, before anything is sent; a notice whose key is already there is
    never made again (at most once, across restarts).
    """

    event: NotificationEvent
    key: str
    summary: str
    revision: str | None = None
    version: str | None = None
    """The revision and version the event is about (the candidate; the stable one for monitoring)."""
    stable_revision: str | None = None
    stable_version: str | None = None
    """What served before (for a promotion: the previous stable), if anything."""
    stage: str | None = None
    metric: str | None = None
    value: float | None = None
    threshold: str | None = None
    targets: tuple[str, ...] = ()
    """The subscribed targets that want this event (names; the admin's config says where they are)."""


@dataclass(frozen=True)
class Plan:
    """Everything one reconcile must do, in the order the act step does it.

    Invariants, worst first: a route in ``apply`` never sends live traffic to
    a Service with no Ready pod behind it (rule 1); ``scale`` and ``delete``
    never touch the revision serving all traffic (rule 3); ``status`` is the
    whole status, so applying the same Plan twice changes nothing.

    ``finalizer`` adds ``modeldeploy.io/cleanup`` (True, first of all, before any child exists)
    or removes it (False, once a deleted ModelDeployment has no child left).
    """

    apply: tuple[dict[str, Any], ...] = ()
    scale: tuple[tuple[str, int], ...] = ()
    hand_over: tuple[tuple[str, int], ...] = ()
    """Deployments whose replica count goes to their HPA, with the count to start from: written
    once, by a field manager of its own, right after the Deployment's apply creates it (or before
    the apply that stops claiming a count the operator held)."""
    delete: tuple[ObjectRef, ...] = ()
    status: dict[str, Any] | None = None
    events: tuple[Event, ...] = ()
    notices: tuple[Notice, ...] = ()
    """Sent, off the reconcile worker, only once ``status`` (which records their keys) is written."""
    requeue_after: float | None = None
    finalizer: bool | None = None
    """True: add FINALIZER; False: remove it; None: leave the finalizers as they are."""
