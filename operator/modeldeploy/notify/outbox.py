"""The outbox: notices queued by reconciles, sent by one thread per destination, never by a reconcile.

A reconcile hands its plan's notices to :meth:`Outbox.submit` *after* the
status write that records their keys succeeded; ``submit`` only puts them in
bounded queues (``put_nowait``) and returns. One daemon thread per
destination (each admin target, and the CloudEvents sink) takes them off its
queue, spends a token of that destination's bucket and sends: through Apprise
for targets, through :class:`~modeldeploy.analysis.outbound.Outbound` (the
admin's egress rules, a deadline, no redirects) for the sink. A slow or broken
destination delays only itself. Every outcome is counted in
``modeldeploy_notifications_total{target,event,result}``: ``sent``,
``failed``, ``rate_limited`` (dropped: the bucket was empty), ``queue_full``
(dropped: the destination was too far behind). Nothing is retried: a notice
is sent at most once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import Counter

from modeldeploy.analysis.outbound import Outbound, OutboundError
from modeldeploy.api import parse_duration
from modeldeploy.notify.bucket import TokenBucket
from modeldeploy.notify.message import WARNING_EVENTS, Origin, body, data, title
from modeldeploy.plan.outputs import Notice
from modeldeploy.providers import CloudEventsSink, NotificationTarget, OperatorConfig

logger = logging.getLogger("modeldeploy.notify")

CLOUD_EVENTS = "cloudevents"
"""The ``target`` label of the CloudEvents sink (the config refuses a target of this name)."""
QUEUE_CAPACITY = 1000
MAX_ANSWER = 64 * 1024

NOTIFICATIONS = Counter(
    "modeldeploy_notifications_total",
    "Notices handed to a destination, by target, event and result (sent, failed, rate_limited, queue_full).",
    ["target", "event", "result"],
)


class Sender(Protocol):
    def __call__(self, origin: Origin, notice: Notice) -> bool: ...


@dataclass(frozen=True)
class _Item:
    origin: Origin
    notice: Notice


class _Destination:
    """One queue, one bucket, one thread, one way of sending."""

    def __init__(self, name: str, send: Sender, bucket: TokenBucket, capacity: int = QUEUE_CAPACITY) -> None:
        self.name = name
        self.send = send
        self.bucket = bucket
        self.queue: queue.Queue[_Item | None] = queue.Queue(capacity)
        self.thread = threading.Thread(target=self._run, name=f"notify-{name}", daemon=True)

    def put(self, item: _Item) -> None:
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            NOTIFICATIONS.labels(self.name, item.notice.event.value, "queue_full").inc()
            logger.warning("notification queue of %s is full; dropped %s", self.name, item.notice.key)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            event = item.notice.event.value
            if not self.bucket.take():
                NOTIFICATIONS.labels(self.name, event, "rate_limited").inc()
                logger.warning("notification target %s over its rate; dropped %s", self.name, item.notice.key)
                continue
            try:
                ok = self.send(item.origin, item.notice)
            except Exception:  # a destination's failure must never stop the sender
                logger.exception("notification to %s failed", self.name)
                ok = False
            NOTIFICATIONS.labels(self.name, event, "sent" if ok else "failed").inc()
            if not ok:
                logger.warning("notification to %s not delivered: %s", self.name, item.notice.key)


def apprise_sender(target: NotificationTarget) -> Sender:
    """Sends through Apprise to every URL of ``target``; True when all of them took it."""
    import apprise  # imported here: only operators with targets pay for loading its plugins

    client = apprise.Apprise()
    for url in target.read_urls():
        if not client.add(url):
            raise ValueError(f"notificationTargets[{target.name}]: Apprise does not accept one of its URLs")

    def send(origin: Origin, notice: Notice) -> bool:
        kind = apprise.NotifyType.WARNING if notice.event in WARNING_EVENTS else apprise.NotifyType.INFO
        return bool(client.notify(title=title(origin, notice), body=body(origin, notice), notify_type=kind))

    return send


def cloud_event_id(origin: Origin, notice: Notice) -> str:
    """The same id for the same transition, so a sink may deduplicate."""
    return hashlib.sha256(f"{origin.namespace}/{origin.name}/{notice.key}".encode()).hexdigest()[:32]


def cloud_event(sink: CloudEventsSink, origin: Origin, notice: Notice) -> tuple[dict[str, str], bytes]:
    """Headers and body of the notice as a CloudEvent over HTTP (structured or binary mode)."""
    from cloudevents.conversion import to_binary, to_structured
    from cloudevents.http import CloudEvent

    event = CloudEvent(
        {
            "type": notice.event.cloud_event_type,
            "source": sink.source,
            "subject": f"{origin.namespace}/{origin.name}",
            "id": cloud_event_id(origin, notice),
            "datacontenttype": "application/json",
        },
        data(origin, notice),
    )
    convert = to_structured if sink.mode == "structured" else to_binary
    headers, payload = convert(event, data_marshaller=lambda d: json.dumps(d).encode())
    return {str(k): str(v) for k, v in headers.items()}, payload if isinstance(payload, bytes) else bytes(
        payload
    )


def cloud_events_sender(sink: CloudEventsSink, outbound: Outbound) -> Sender:
    deadline = parse_duration(sink.timeout)

    def send(origin: Origin, notice: Notice) -> bool:
        headers, payload = cloud_event(sink, origin, notice)
        try:
            answer = outbound.request(
                "POST", sink.sink, deadline=deadline, max_body=MAX_ANSWER, headers=headers, body=payload
            )
        except OutboundError as error:
            logger.warning("CloudEvents sink: %s", error)
            return False
        return answer.ok

    return send


class Outbox:
    """Where reconciles drop notices; start it once, stop it at shutdown."""

    def __init__(
        self,
        config: OperatorConfig,
        outbound: Outbound,
        *,
        clock: Callable[[], float] = time.monotonic,
        make_sender: Callable[[NotificationTarget], Sender] = apprise_sender,
        capacity: int = QUEUE_CAPACITY,
    ) -> None:
        self.config = config
        self.destinations: dict[str, _Destination] = {}
        for target in config.notification_targets:
            self.destinations[target.name] = _Destination(
                target.name,
                make_sender(target),
                TokenBucket(target.rate_per_minute, target.burst, clock),
                capacity,
            )
        sink = config.cloud_events
        self.sink: _Destination | None = None
        if sink is not None:
            self.sink = _Destination(
                CLOUD_EVENTS,
                cloud_events_sender(sink, outbound),
                TokenBucket(sink.rate_per_minute, sink.burst, clock),
                capacity,
            )

    def targets_for(self, namespace: str) -> frozenset[str]:
        return self.config.targets_for(namespace)

    def sink_serves(self, namespace: str) -> bool:
        sink = self.config.cloud_events
        return sink is not None and sink.serves(namespace)

    def start(self) -> None:
        for destination in self._all():
            destination.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued (within ``timeout``), then end the threads."""
        for destination in self._all():
            if destination.thread.is_alive():
                destination.queue.put(None)
        finish = time.monotonic() + timeout
        for destination in self._all():
            if destination.thread.is_alive():
                destination.thread.join(max(0.0, finish - time.monotonic()))

    def submit(self, origin: Origin, notices: Sequence[Notice]) -> None:
        """Queue ``notices`` for their targets and the sink; returns at once (never blocks)."""
        sink = self.config.cloud_events
        for notice in notices:
            item = _Item(origin, notice)
            for name in notice.targets:
                target = self._target(name)
                if target is not None and target.serves(origin.namespace):
                    self.destinations[name].put(item)
            if self.sink is not None and sink is not None and sink.serves(origin.namespace):
                self.sink.put(item)

    def _target(self, name: str) -> NotificationTarget | None:
        return next((t for t in self.config.notification_targets if t.name == name), None)

    def _all(self) -> list[_Destination]:
        return [*self.destinations.values(), *([self.sink] if self.sink is not None else [])]


def describe(config: OperatorConfig) -> dict[str, Any]:
    """What is set up, for the startup log (names only: URLs hold secrets)."""
    return {
        "targets": [t.name for t in config.notification_targets],
        "cloudEvents": config.cloud_events.mode if config.cloud_events else None,
    }
