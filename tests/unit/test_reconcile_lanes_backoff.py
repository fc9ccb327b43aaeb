"""The work queue: failover first, and failing reconciles back off exponentially, honouring Retry-After."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Hashable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

import pytest
from kubernetes import client as k8s_client

from modeldeploy.kube.client import ApiError, KubeClient, parse_retry_after
from modeldeploy.kube.kinds import DEPLOYMENT
from modeldeploy.kube.store import Store
from modeldeploy.reconcile.backoff import Backoff
from modeldeploy.reconcile.measure import Measurer
from modeldeploy.reconcile.queue import WorkQueue
from modeldeploy.reconcile.reconciler import Reconciler


def test_an_urgent_key_is_reconciled_before_keys_queued_earlier() -> None:
    async def scenario() -> list[Hashable]:
        done: list[Hashable] = []
        gate = threading.Event()

        def work(key: Hashable) -> None:
            if key == "busy":
                gate.wait(5)
            done.append(key)

        queue = WorkQueue(work, workers=1)
        queue.start()
        queue.trigger("busy")
        await asyncio.sleep(0.05)
        for key in ("n1", "n2", "n3"):
            queue.trigger(key)
        queue.trigger("failover", urgent=True)
        queue.trigger("n2", urgent=True)  # already waiting in the normal lane: moves over
        gate.set()
        while len(done) < 5:
            await asyncio.sleep(0.01)
        await queue.stop()
        return done

    assert asyncio.run(scenario()) == ["busy", "failover", "n2", "n1", "n3"]


def test_the_urgency_check_decides_when_the_trigger_does_not_say() -> None:
    async def scenario() -> list[Hashable]:
        done: list[Hashable] = []
        gate = threading.Event()

        def work(key: Hashable) -> None:
            if key == "busy":
                gate.wait(5)
            done.append(key)

        queue = WorkQueue(work, workers=1, urgent=lambda key: key == "no-ready-replicas")
        queue.start()
        queue.trigger("busy")
        await asyncio.sleep(0.05)
        queue.trigger("calm")
        queue.trigger("no-ready-replicas")
        gate.set()
        while len(done) < 3:
            await asyncio.sleep(0.01)
        await queue.stop()
        return done

    assert asyncio.run(scenario()) == ["busy", "no-ready-replicas", "calm"]


def retry_times(error: Exception, backoff: Backoff, failures: int) -> list[float]:
    async def scenario() -> list[float]:
        seen: list[float] = []

        def work(key: Hashable) -> None:
            seen.append(time.monotonic())
            if len(seen) <= failures:
                raise error
            return None

        queue = WorkQueue(work, workers=1, backoff=backoff)
        queue.start()
        queue.trigger("k")
        deadline = time.monotonic() + 10
        while len(seen) < failures + 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # a success schedules nothing more
        await queue.stop()
        return seen

    seen = asyncio.run(scenario())
    return [b - a for a, b in itertools.pairwise(seen)]


def test_a_failing_reconcile_backs_off_exponentially_then_stops_retrying_once_it_succeeds() -> None:
    gaps = retry_times(ApiError(500, "InternalError", "etcd"), Backoff(base=0.1, cap=10), failures=3)
    assert len(gaps) == 3
    # equal jitter: the n-th wait lies in [base * 2**(n-1) / 2, base * 2**(n-1)]
    for n, gap in enumerate(gaps):
        assert 0.1 * 2**n / 2 - 0.01 <= gap <= 0.1 * 2**n + 0.15, gaps


def test_retry_after_from_the_api_server_is_honoured() -> None:
    throttled = ApiError(429, "TooManyRequests", "slow down", retry_after=0.6)
    gaps = retry_times(throttled, Backoff(base=0.01, cap=10), failures=1)
    assert gaps[0] >= 0.6


def test_backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half() -> None:
    low = Backoff(base=1, cap=30, random=lambda: 0.0)
    high = Backoff(base=1, cap=30, random=lambda: 1.0)
    assert [low.delay(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [0.5, 1, 2, 4, 8, 15, 15]
    assert [high.delay(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [1, 2, 4, 8, 16, 30, 30]
    assert high.delay(10_000) == 30  # no overflow after a long outage


def test_retry_after_is_a_floor_bounded_by_the_cap() -> None:
    backoff = Backoff(base=1, cap=30, random=lambda: 1.0)
    assert backoff.delay(1, retry_after=7) == 7
    assert backoff.delay(5, retry_after=7) == 16
    assert backoff.delay(1, retry_after=86_400) == 30


def test_jitter_spreads_keys_that_failed_together() -> None:
    backoff = Backoff(base=1, cap=30)
    assert len({round(backoff.delay(4), 6) for _ in range(20)}) > 10


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, None), ("", None), ("7", 7.0), ("0", 0.0), ("-3", 0.0), ("soon", None)],
)
def test_retry_after_header_in_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_header_as_an_http_date() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    parsed = parse_retry_after(later)
    assert parsed is not None and 25 <= parsed <= 31


def test_the_client_reads_retry_after_from_a_throttled_answer() -> None:
    class Throttling(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"kind":"Status","reason":"TooManyRequests","message":"slow down"}'
            self.send_response(429)
            self.send_header("Retry-After", "4")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        configuration = k8s_client.Configuration()
        configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(ApiError) as raised:
            KubeClient(configuration).list_objects(DEPLOYMENT, "risk")
        assert (raised.value.status, raised.value.reason, raised.value.retry_after) == (
            429,
            "TooManyRequests",
            4.0,
        )
    finally:
        server.shutdown()
        server.server_close()


def urgency(ready: int | None, active: bool = False, no_ready_replicas: bool = True) -> bool:
    store = Store()
    store.put(
        {
            "kind": "ModelDeployment",
            "metadata": {"name": "fraud", "namespace": "risk"},
            "spec": {"fallback": {"mode": "Response", "trigger": {"noReadyReplicas": no_ready_replicas}}},
            "status": {
                "stable": {"revision": "fraud-1"},
                "operatorState": {"fallback": {"active": active}},
            },
        }
    )
    if ready is not None:
        store.put(
            {
                "kind": "Deployment",
                "metadata": {"name": "fraud-1", "namespace": "risk"},
                "status": {"readyReplicas": ready} if ready else {},
            }
        )
    reconciler = Reconciler(cast(KubeClient, None), store, cast(Measurer, None))
    return reconciler.urgent(("risk", "fraud"))


def test_a_stable_revision_without_ready_replicas_makes_its_deployment_urgent() -> None:
    assert urgency(ready=0)
    assert not urgency(ready=2)
    assert not urgency(ready=0, active=True)  # already failed over
    assert not urgency(ready=0, no_ready_replicas=False)  # the trigger ignores readiness
    assert not urgency(ready=None)  # no Deployment seen yet
