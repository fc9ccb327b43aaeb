"""Warm-up verdicts: p99 and error rate against the spec's limits; nothing guessed."""

from __future__ import annotations

from modeldeploy.analysis.warmup import judge_warmup, percentile, service_url
from modeldeploy.api import Warmup


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
