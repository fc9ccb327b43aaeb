"""kube/events.py: a reconcile queues its Events and goes on; one thread posts them, in order.

The API server is a recorder here whose answers the test holds back (a fast
test of the poster alone); the operator's integration tests read the Events it
posts from a real API server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from planner_world import NAME, World, spec
from prometheus_client import REGISTRY

from modeldeploy.kube.apply import Actor
from modeldeploy.kube.client import ApiError, Kind
from modeldeploy.kube.events import EventPoster
from modeldeploy.kube.store import Store
from modeldeploy.plan.outputs import Event, Plan

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
WAIT = 5.0


class SlowServer:
    """Answers an Event's creation only when the test lets it; can refuse or fail some."""

    def __init__(self, fail: dict[str, Exception] | None = None) -> None:
        self.answer = threading.Event()
        self.started = threading.Event()
        self.created: list[str] = []  # reasons, in the order posted
        self.fail = fail or {}

    def create(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        assert kind.kind == "Event"
        self.started.set()
        assert self.answer.wait(WAIT), "the test never let the server answer"
        self.created.append(body["reason"])
        if body["reason"] in self.fail:
            raise self.fail[body["reason"]]
        return body


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("modeldeploy_kube_events_total", {"outcome": outcome}) or 0.0


def body(reason: str) -> dict[str, Any]:
    return {"metadata": {"name": f"{NAME}.{reason.lower()}", "namespace": "risk"}, "reason": reason}


@pytest.fixture
def server() -> Iterator[SlowServer]:
    server = SlowServer()
    yield server
    server.answer.set()  # never leave the poster's thread waiting


def test_a_reconcile_does_not_wait_for_its_events_and_they_are_posted_in_order(server: SlowServer) -> None:
    poster = EventPoster(server)  # type: ignore[arg-type]
    poster.start()
    subject = World(spec("1.0.0")).subject()
    plan = Plan(events=(Event("Warning", "RolledBack", "back"), Event("Normal", "Promoted", "ok")))

    Actor(server, Store(), poster).act(subject, plan, NOW)  # type: ignore[arg-type]
    poster(body("Third"))

    assert server.started.wait(WAIT)
    assert server.created == []  # act returned while the server still held its answer
    server.answer.set()
    poster.stop(timeout=WAIT)
    assert server.created == ["RolledBack", "Promoted", "Third"]


def test_a_full_queue_drops_the_new_event_and_counts_it(server: SlowServer) -> None:
    poster = EventPoster(server, capacity=2)  # type: ignore[arg-type]
    dropped, posted = counted("dropped"), counted("posted")

    for reason in ("First", "Second", "Third"):
        poster(body(reason))  # the thread is not started: nothing leaves the queue yet

    assert counted("dropped") == dropped + 1
    server.answer.set()
    poster.start()
    poster.stop(timeout=WAIT)
    assert server.created == ["First", "Second"]
    assert counted("posted") == posted + 2


def test_a_refused_or_failing_event_is_counted_and_the_next_one_is_posted() -> None:
    server = SlowServer(
        fail={
            "Refused": ApiError(403, "Forbidden", "events is forbidden"),
            "Broken": RuntimeError("not an API error"),
        }
    )
    server.answer.set()
    poster = EventPoster(server)  # type: ignore[arg-type]
    failed, posted = counted("failed"), counted("posted")
    poster.start()

    for reason in ("Refused", "Broken", "Promoted"):
        poster(body(reason))
    poster.stop(timeout=WAIT)

    assert server.created == ["Refused", "Broken", "Promoted"]
    assert (counted("failed"), counted("posted")) == (failed + 2, posted + 1)


def test_stop_gives_up_on_a_server_that_does_not_answer_within_its_timeout(server: SlowServer) -> None:
    poster = EventPoster(server, capacity=1)  # type: ignore[arg-type]
    poster.start()
    poster(body("Held"))
    assert server.started.wait(WAIT)
    poster(body("Queued"))  # the queue is full now: stop cannot even queue its end

    began = time.monotonic()
    poster.stop(timeout=0.2)

    assert time.monotonic() - began < WAIT
    assert server.created == []
