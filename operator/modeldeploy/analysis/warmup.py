"""Warm-up: synthetic requests that prove a candidate answers fast before any user reaches it.

A freshly started model server is slow at first (lazy loading, JIT, cold
caches), and a version that cannot answer at all should never see a user. So
before any live traffic, the operator sends ``spec.strategy.warmup.requests``
requests (``concurrency`` at a time) straight to the candidate Service, with
payloads from a ConfigMap, and gates on the measured p99 latency and error
rate. Nothing about the result is guessed: a request that times out or is
refused counts as an error.

One wait comes first. A candidate's pods turn Ready a moment before the
cluster routes its Service to them: the endpoints controller and then
kube-proxy (or the mesh) must catch up, and until they do a connection is
refused or a fresh name does not resolve yet. So the first request is tried
again, with a growing pause, until something answers, for at most
:data:`REACH_WINDOW` seconds. Only connection-level failures are retried (no
listener, no route, no name); an answer of any status, or a request that times
out, ends the wait and counts. Every counted request therefore reached the
candidate, and a Service that never routes fails the warm-up with a message
that says so rather than as a wall of refused requests.

How the operator reaches a Service is configurable (``--service-url-template``)
because where it runs decides it: in the cluster,
``http://{service}.{namespace}.svc:{port}``; in tests, a server on 127.0.0.1.
Every request goes through :class:`~modeldeploy.analysis.outbound.Outbound`
(egress rules, no redirects, a total deadline per request, answers capped at
:data:`MAX_ANSWER_BYTES` and discarded), so a candidate that answers with
gigabytes or one byte a second costs an error, not the operator's memory.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from modeldeploy.analysis.outbound import TIMEOUT, Outbound, OutboundError
from modeldeploy.api import Warmup, parse_duration

REQUEST_TIMEOUT = 10.0
MAX_ANSWER_BYTES = 1024 * 1024
"""A warm-up answer is read (so its latency is honest) and dropped; larger ones count as errors."""
REACH_WINDOW = 30.0
"""How long the first request may keep finding nothing listening behind the candidate's Service."""
UNROUTED = frozenset({"connection refused", "connection failed", "DNS lookup failed"})
"""Failures where no request reached a server: the cluster may not route the new Service yet."""


def service_url(template: str, service: str, namespace: str, port: int) -> str:
    return template.format(service=service, namespace=namespace, port=port).rstrip("/")


@dataclasses.dataclass(frozen=True)
class WarmupResult:
    requests: int
    errors: int
    p99_seconds: float | None
    passed: bool
    message: str

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 1.0


def percentile(samples: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile (p99 of 200 samples is the 198th smallest)."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def run_warmup(
    base_url: str,
    warmup: Warmup,
    payloads: Sequence[bytes],
    revision: str,
    outbound: Outbound,
    reach_window: float = REACH_WINDOW,
) -> WarmupResult:
    """Send the warm-up requests and judge them against maxLatencyP99 and maxErrorRate."""
    started = time.monotonic()
    deadline = started + parse_duration(warmup.timeout)
    url = base_url + warmup.path

    def one(index: int) -> tuple[float | None, str | None]:
        """The latency of a good answer (None for a bad one) and, when none came, the error's kind."""
        budget = min(REQUEST_TIMEOUT, deadline - time.monotonic())
        if budget <= 0:
            return None, TIMEOUT
        began = time.perf_counter()
        headers = {"X-Modeldeploy-Warmup": "true", "X-Modeldeploy-Revision": revision}
        body = None
        if payloads:
            body = payloads[index % len(payloads)]
            headers["Content-Type"] = "application/json"
        try:
            answer = outbound.request(
                "POST" if body is not None else "GET",
                url,
                deadline=budget,
                max_body=MAX_ANSWER_BYTES,
                headers=headers,
                body=body,
            )
        except OutboundError as error:
            return None, error.kind
        good = answer.status < 300 or 400 <= answer.status < 500
        return (time.perf_counter() - began if good else None), None

    first, kind, tries = _reach(one, until=min(deadline, started + reach_window))
    routed_after = time.monotonic() - started
    if kind in UNROUTED:
        waited = min(reach_window, deadline - started)
        return WarmupResult(
            requests=0,
            errors=0,
            p99_seconds=None,
            passed=False,
            message=(
                f"warm-up failed: the candidate's Service never answered in {waited:g}s ({kind}); "
                "check that its pods listen on the Service's target port"
            ),
        )
    outcomes = [first]
    if warmup.requests > 1:
        with ThreadPoolExecutor(max_workers=warmup.concurrency) as pool:
            outcomes += [latency for latency, _ in pool.map(one, range(1, warmup.requests))]
    latencies = [latency for latency in outcomes if latency is not None]
    p99 = percentile(latencies, 0.99)
    errors = len(outcomes) - len(latencies)
    result = judge_warmup(warmup, len(outcomes), errors, p99, timed_out=time.monotonic() > deadline)
    if tries == 1:
        return result
    note = f"; the Service routed after {routed_after:.1f}s ({tries - 1} tries found nothing listening)"
    return dataclasses.replace(result, message=result.message + note)


def _reach(
    one: Callable[[int], tuple[float | None, str | None]], until: float
) -> tuple[float | None, str | None, int]:
    """Request 0, tried again while nothing is routed behind the Service, until ``until``;
    also how many tries it took."""
    pause = 0.1
    tries = 0
    while True:
        latency, kind = one(0)
        tries += 1
        left = until - time.monotonic()
        if kind not in UNROUTED or left <= 0:
            return latency, kind, tries
        time.sleep(min(pause, left))
        pause = min(pause * 2, 1.0)


def judge_warmup(
    warmup: Warmup, sent: int, errors: int, p99: float | None, timed_out: bool = False
) -> WarmupResult:
    rate = errors / sent if sent else 1.0
    p99_text = f"{p99 * 1000:.0f}ms" if p99 is not None else "n/a"
    summary = f"{sent} requests, {errors} errors ({rate:.1%}), p99 {p99_text}"
    problems: list[str] = []
    if timed_out:
        problems.append(f"did not finish within {warmup.timeout}")
    if warmup.max_error_rate is not None and rate > warmup.max_error_rate:
        problems.append(f"error rate {rate:.3f} > maxErrorRate {warmup.max_error_rate}")
    if warmup.max_latency_p99 is not None:
        limit = parse_duration(warmup.max_latency_p99)
        if p99 is None:
            problems.append("no successful request to measure p99 on")
        elif p99 > limit:
            problems.append(f"p99 {p99_text} > maxLatencyP99 {warmup.max_latency_p99}")
    if sent and errors == sent:
        problems.append("every request failed")
    message = f"warm-up {'failed' if problems else 'passed'}: {summary}" + (
        f"; {'; '.join(problems)}" if problems else ""
    )
    return WarmupResult(requests=sent, errors=errors, p99_seconds=p99, passed=not problems, message=message)
