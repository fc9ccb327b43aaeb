"""The retrain webhook: the facts as JSON, retried with backoff, refused requests not retried."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modeldeploy.analysis.webhook import call_webhook


class Receiver:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[dict[str, object]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                status = owner.statuses.pop(0) if owner.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/retrain"


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    server = Receiver(list(request.param))
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.mark.parametrize("receiver", [[503, 500, 200]], indirect=True)
def test_server_errors_are_retried_with_growing_backoff(receiver: Receiver) -> None:
    waits: list[float] = []
    outcome = call_webhook(receiver.url, {"metric": "drift-psi", "value": 0.31}, 2.0, 3, sleep=waits.append)
    assert outcome.ok and "attempt 3" in outcome.message
    assert waits == [0.5, 1.0]
    assert receiver.bodies == [{"metric": "drift-psi", "value": 0.31}] * 3


@pytest.mark.parametrize("receiver", [[500, 500, 500, 500]], indirect=True)
def test_a_failing_server_is_recorded_as_failed_after_the_retries(receiver: Receiver) -> None:
    outcome = call_webhook(receiver.url, {"a": 1}, 2.0, 3, sleep=lambda _: None)
    assert not outcome.ok and outcome.message == "webhook failed after 4 attempt(s): HTTP 500"


@pytest.mark.parametrize("receiver", [[400]], indirect=True)
def test_a_refused_request_is_not_retried(receiver: Receiver) -> None:
    outcome = call_webhook(receiver.url, {"a": 1}, 2.0, 3, sleep=lambda _: None)
    assert not outcome.ok and len(receiver.bodies) == 1


def test_nothing_listening_is_a_failure_not_an_exception() -> None:
    outcome = call_webhook("http://127.0.0.1:9/hook", {}, 1.0, 1, sleep=lambda _: None)
    assert not outcome.ok and "ConnectionError" in outcome.message
