"""Warm-up verdicts: p99 and error rate against the spec's limits; nothing guessed."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from modeldeploy.analysis.outbound import EgressPolicy, Outbound
from modeldeploy.analysis.warmup import judge_warmup, percentile, run_warmup, service_url
from modeldeploy.api import Warmup

LOOPBACK = Outbound(EgressPolicy.parse(["127.0.0.0/8"]))


def warmup(**fields: object) -> Warmup:
    return Warmup.model_validate({"path": "/infer", **fields})


def test_p99_is_the_nearest_rank() -> None:
    samples = [float(i) for i in range(1, 201)]
    assert percentile(samples, 0.99) == 198.0
    assert percentile([], 0.99) is None


def test_fast_answers_pass() -> None:
    result = judge_warmup(warmup(maxLatencyP99="300ms", maxErrorRate=0.01), sent=200, errors=1, p99=0.12)
    assert result.passed
    assert result.message == "warm-up passed: 200 requests, 1 errors (0.5%), p99 120ms"


def test_a_slow_p99_fails_and_says_by_how_much() -> None:
    result = judge_warmup(warmup(maxLatencyP99="300ms"), sent=200, errors=0, p99=0.45)
    assert not result.passed
    assert "p99 450ms > maxLatencyP99 300ms" in result.message


def test_too_many_errors_fail() -> None:
    result = judge_warmup(warmup(maxErrorRate=0.01), sent=100, errors=5, p99=0.01)
    assert not result.passed and "error rate 0.050 > maxErrorRate 0.01" in result.message


def test_all_requests_failing_is_never_a_pass_even_without_limits() -> None:
    result = judge_warmup(warmup(), sent=10, errors=10, p99=None)
    assert not result.passed and "every request failed" in result.message


def test_a_timeout_fails() -> None:
    assert not judge_warmup(warmup(), sent=3, errors=0, p99=0.01, timed_out=True).passed


def test_service_url_template() -> None:
    template = "http://{service}.{namespace}.svc:{port}"
    assert service_url(template, "fraud-candidate", "risk", 80) == "http://fraud-candidate.risk.svc:80"
    assert service_url("http://127.0.0.1:5000/", "x", "y", 80) == "http://127.0.0.1:5000"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def server(port: int, status: int, after: float = 0.0) -> Iterator[list[str]]:
    """A model server on ``port``, listening ``after`` seconds from now; yields the paths it served."""
    served: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            served.append(self.path)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_: object) -> None:
            pass

    holder: list[ThreadingHTTPServer] = []
    stop = threading.Event()
    lock = threading.Lock()

    def serve() -> None:
        if not holder:
            stop.wait(after)
            with lock:
                if stop.is_set():
                    return
                holder.append(ThreadingHTTPServer(("127.0.0.1", port), Handler))
        holder[0].serve_forever(poll_interval=0.05)

    if after <= 0:  # listening (connections queue) before the first request is sent
        holder.append(ThreadingHTTPServer(("127.0.0.1", port), Handler))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        with lock:
            stop.set()
        if holder:
            holder[0].shutdown()
            holder[0].server_close()
        thread.join(5)


def test_a_service_routed_late_is_waited_for_and_every_counted_request_reaches_the_candidate() -> None:
    port = free_port()
    with server(port, 200, after=0.6) as served:
        spec = warmup(requests=8, concurrency=2)
        result = run_warmup(f"http://127.0.0.1:{port}", spec, [b"{}"], "r1", LOOPBACK, reach_window=10)
    assert result.passed, result.message
    assert (result.requests, result.errors) == (8, 0)
    routed = re.search(
        r"; the Service routed after (\d+\.\d)s \((\d+) tries found nothing listening\)$", result.message
    )
    assert routed and float(routed[1]) >= 0.6 and int(routed[2]) >= 1, result.message
    assert served == ["/infer"] * 8


def test_a_service_that_never_routes_fails_saying_so_without_counting_requests() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    result = run_warmup(url, warmup(requests=5), [b"{}"], "r1", LOOPBACK, reach_window=0.5)
    assert not result.passed
    assert result.requests == 0
    assert "never answered in 0.5s (connection refused)" in result.message, result.message


def test_an_answer_that_is_an_error_is_counted_at_once_not_waited_out() -> None:
    port = free_port()
    with server(port, 503) as served:
        result = run_warmup(
            f"http://127.0.0.1:{port}", warmup(requests=4), [b"{}"], "r1", LOOPBACK, reach_window=10
        )
    assert not result.passed
    assert (result.requests, result.errors) == (4, 4)
    assert len(served) == 4
    assert result.message.endswith("every request failed"), result.message
