"""The retrain webhook: the facts as JSON, retried with backoff, refused requests not retried."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modeldeploy.analysis.outbound import EgressPolicy, Outbound
from modeldeploy.analysis.webhook import WebhookOutcome, call_webhook
from webhook_receiver import WebhookReceiver

LOOPBACK = Outbound(EgressPolicy.parse(["127.0.0.0/8"]))


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(list(request.param))
    yield server
    server.close()


@pytest.mark.parametrize("receiver", [[503, 500, 200]], indirect=True)
def test_server_errors_are_retried_with_growing_backoff(receiver: WebhookReceiver) -> None:
    waits: list[float] = []
    outcome = call_webhook(
        receiver.url, {"metric": "drift-psi", "value": 0.31}, 2.0, 3, LOOPBACK, sleep=waits.append
    )
    assert outcome.ok and "attempt 3" in outcome.message
    assert waits == [0.5, 1.0]
    assert receiver.bodies == [{"metric": "drift-psi", "value": 0.31}] * 3


@pytest.mark.parametrize("receiver", [[500, 500, 500, 500]], indirect=True)
def test_a_failing_server_is_recorded_as_failed_after_the_retries(receiver: WebhookReceiver) -> None:
    outcome = call_webhook(receiver.url, {"a": 1}, 2.0, 3, LOOPBACK, sleep=lambda _: None)
    assert not outcome.ok and outcome.message == "webhook failed after 4 attempt(s): HTTP 500"


@pytest.mark.parametrize("receiver", [[400]], indirect=True)
def test_a_refused_request_is_not_retried(receiver: WebhookReceiver) -> None:
    outcome = call_webhook(receiver.url, {"a": 1}, 2.0, 3, LOOPBACK, sleep=lambda _: None)
    assert not outcome.ok and len(receiver.bodies) == 1


def test_nothing_listening_is_a_failure_not_an_exception() -> None:
    outcome = call_webhook("http://127.0.0.1:9/hook", {}, 1.0, 1, LOOPBACK, sleep=lambda _: None)
    assert not outcome.ok and outcome.message == "webhook failed after 2 attempt(s): connection refused"


@pytest.mark.parametrize("receiver", [[200]], indirect=True)
def test_a_webhook_outside_the_allow_list_is_never_called_nor_retried(receiver: WebhookReceiver) -> None:
    outcome = call_webhook(receiver.url, {"a": 1}, 2.0, 3, Outbound(), sleep=lambda _: None)
    assert outcome == WebhookOutcome(False, "webhook failed after 1 attempt(s): refused by egress policy")
    assert receiver.bodies == []
