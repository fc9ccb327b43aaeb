"""The outbox, its token bucket and the messages: queued off the reconcile, rate-limited, counted."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from cloudevents.http import from_http
from prometheus_client import REGISTRY

from modeldeploy.api import NotificationEvent
from modeldeploy.notify.bucket import TokenBucket
from modeldeploy.notify.message import Origin, body, data, title
from modeldeploy.notify.outbox import Outbox, cloud_event
from modeldeploy.plan.outputs import Notice
from modeldeploy.providers import CloudEventsSink, NotificationTarget, OperatorConfig

ORIGIN = Origin("risk", "fraud", "fraud-detector")
ROLLED_BACK = Notice(
    NotificationEvent.ROLLED_BACK,
    "RolledBack/fraud-2/2026-11-22T10:00:00Z",
    "error-rate 0.2 > max 0.01",
    revision="fraud-2-0-0-abc",
    version="2.0.0",
    stable_revision="fraud-1-0-0-def",
    stable_version="1.0.0",
    stage="canary step 2/3 at 25%",
    metric="error-rate",
    value=0.2,
    threshold="max 0.01",
    targets=("team",),
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counted(target: str, event: str, result: str) -> float:
    value = REGISTRY.get_sample_value(
        "modeldeploy_notifications_total", {"target": target, "event": event, "result": result}
    )
    return value or 0.0


def test_bucket_spends_its_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate_per_minute=6, burst=2, clock=clock)
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now += 5  # half a token
    assert bucket.take() is False
    clock.now += 5
    assert bucket.take() is True
    clock.now += 3600  # never more than the burst
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_bucket_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate_per_minute=0, burst=1)


def test_the_message_names_model_versions_stage_metric_and_how_to_act() -> None:
    text = body(ORIGIN, ROLLED_BACK)
    assert "ModelDeployment: risk/fraud" in text and "Model: fraud-detector" in text
    assert "Version: 2.0.0 (revision fraud-2-0-0-abc)" in text
    assert "Stable before: 1.0.0 (revision fraud-1-0-0-def)" in text
    assert "Stage: canary step 2/3 at 25%" in text
    assert "Metric: error-rate = 0.2 (threshold: max 0.01)" in text
    assert "kubectl modeldeploy retry fraud -n risk" in text
    assert title(ORIGIN, ROLLED_BACK) == "[modeldeploy] RolledBack: risk/fraud (fraud-detector)"


def test_a_metric_without_data_says_so() -> None:
    notice = Notice(NotificationEvent.ANALYSIS_INCONCLUSIVE, "k", "held", metric="error-rate")
    text = body(ORIGIN, notice)
    assert "Metric: error-rate = no data (threshold: -)" in text
    assert "kubectl modeldeploy promote fraud -n risk" in text and "kubectl modeldeploy abort" in text


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_the_cloud_event_reads_back_with_the_sdk(mode: str) -> None:
    sink = CloudEventsSink(sink="http://sink.example:8080/", mode=mode)  # type: ignore[arg-type]
    headers, payload = cloud_event(sink, ORIGIN, ROLLED_BACK)
    event = from_http(headers, payload)
    assert event["type"] == "io.modeldeploy.rollout.rolled_back"
    assert event["subject"] == "risk/fraud"
    assert event["source"] == "/modeldeploy/operator"
    assert event.data == data(ORIGIN, ROLLED_BACK)
    assert event.data["metric"] == "error-rate" and event.data["threshold"] == "max 0.01"
    again, _ = cloud_event(sink, ORIGIN, ROLLED_BACK)
    assert from_http(again, payload)["id"] == event["id"]  # the same transition, the same id


def test_every_event_has_a_stable_dotted_type() -> None:
    types = [e.cloud_event_type for e in NotificationEvent]
    assert len(set(types)) == len(types) == 12
    assert all(t.startswith("io.modeldeploy.") and t == t.lower() for t in types)


class Recorder:
    def __init__(self, gate: threading.Event | None = None, ok: bool = True) -> None:
        self.calls: list[tuple[str, str]] = []
        self.threads: list[str] = []
        self.gate = gate
        self.ok = ok
        self.done = threading.Semaphore(0)

    def __call__(self, origin: Origin, notice: Notice) -> bool:
        if self.gate is not None:
            self.gate.wait(30)
        self.calls.append((origin.name, notice.key))
        self.threads.append(threading.current_thread().name)
        self.done.release()
        return self.ok


def outbox(recorders: dict[str, Recorder], clock: Clock, capacity: int = 100, **target: Any) -> Outbox:
    config = OperatorConfig(
        notification_targets=tuple(
            NotificationTarget(name=name, urls=("json://127.0.0.1:9/",), **target) for name in recorders
        )
    )
    from modeldeploy.analysis.outbound import Outbound

    return Outbox(config, Outbound(), clock=clock, make_sender=lambda t: recorders[t.name], capacity=capacity)


def notice(i: int, targets: tuple[str, ...] = ("team",)) -> Notice:
    return Notice(NotificationEvent.PROMOTED, f"Promoted/r{i}", f"r{i} takes all traffic", targets=targets)


def test_submit_returns_while_the_sender_is_stuck_and_the_full_queue_drops_counted() -> None:
    gate = threading.Event()
    slow = Recorder(gate)
    box = outbox({"team": slow}, Clock(), capacity=2)
    box.start()
    before = counted("team", "Promoted", "queue_full")
    try:
        # The sender holds the first; two wait in the queue; the rest is dropped, at once.
        box.submit(ORIGIN, [notice(i) for i in range(6)])
        assert counted("team", "Promoted", "queue_full") - before >= 3
    finally:
        gate.set()
        box.stop()
    assert slow.calls[0] == ("fraud", "Promoted/r0")
    assert len(slow.calls) <= 3


def test_a_target_over_its_rate_drops_and_counts_and_the_others_still_send() -> None:
    clock = Clock()
    team, other = Recorder(), Recorder()
    box = outbox({"team": team, "other": other}, clock, rate_per_minute=1, burst=2)
    box.start()
    limited = counted("team", "Promoted", "rate_limited")
    sent = counted("other", "Promoted", "sent")
    try:
        box.submit(ORIGIN, [notice(i, ("team", "other")) for i in range(4)])
    finally:
        box.stop()
    assert [k for _, k in team.calls] == ["Promoted/r0", "Promoted/r1"]
    assert [k for _, k in other.calls] == ["Promoted/r0", "Promoted/r1"]
    assert counted("team", "Promoted", "rate_limited") - limited == 2
    assert counted("other", "Promoted", "sent") - sent == 2
    # Sent by each destination's own thread, never by the caller (a reconcile worker).
    assert set(team.threads) == {"notify-team"} and set(other.threads) == {"notify-other"}


def test_failures_are_counted_and_a_raising_sender_does_not_stop_the_thread() -> None:
    broken = Recorder(ok=False)
    box = outbox({"team": broken}, Clock())
    box.start()
    failed = counted("team", "Promoted", "failed")
    try:
        box.submit(ORIGIN, [notice(1), notice(2)])
    finally:
        box.stop()
    assert counted("team", "Promoted", "failed") - failed == 2


def test_a_target_not_offered_to_the_namespace_gets_nothing() -> None:
    team = Recorder()
    box = outbox({"team": team}, Clock(), namespaces=("payments",))
    assert box.targets_for("risk") == frozenset()
    assert box.targets_for("payments") == frozenset({"team"})
    box.start()
    try:
        box.submit(ORIGIN, [notice(1)])
    finally:
        box.stop()
    assert team.calls == []


def test_config_refuses_a_target_without_urls_and_the_reserved_name() -> None:
    with pytest.raises(ValueError, match="urls or urlsFile"):
        NotificationTarget(name="team")
    with pytest.raises(ValueError, match="reserved"):
        OperatorConfig(notification_targets=(NotificationTarget(name="cloudevents", urls=("json://x/",)),))


def test_urls_file_lines_are_read_skipping_comments(tmp_path: Any) -> None:
    path = tmp_path / "team"
    path.write_text("# the team's channel\nslack://a/b/c\n\njson://hooks.example/x\n")
    target = NotificationTarget(name="team", urls_file=str(path))
    assert target.read_urls() == ("slack://a/b/c", "json://hooks.example/x")
    json.dumps(target.model_dump(by_alias=True))
