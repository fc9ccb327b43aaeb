"""A Prometheus HTTP API client that turns every answer, good or bad, into a value or a reason.

Analysis must never mistake a missing answer for a good one, and a reconcile
must not crash because Prometheus is down. So :meth:`PrometheusClient.query`
never raises for anything Prometheus or the network does: it returns a
:class:`QueryResult` whose ``value`` is a finite number, or ``None`` with an
``error`` saying why (network error, timeout, HTTP or PromQL error, empty
result, NaN, several series). The verdict layer turns every ``None`` into
Inconclusive.

Choices, and why:

- **One number per query.** A metric is judged by one value; a query that
  returns several series is an authoring mistake (which series would count?), so
  it is reported as such instead of being summed or picked silently.
- **Instant queries, GET unless long.** ``GET /api/v1/query`` is what read-only
  proxies in front of Prometheus (kube-rbac-proxy maps GET to the ``get`` verb)
  allow; a query whose URL would exceed :data:`MAX_GET_QUERY_LENGTH` is POSTed
  form-encoded, which Prometheus accepts too, to stay under proxies' URL limits.
- **Secure by default.** TLS certificates are verified unless the spec says
  ``insecureSkipVerify``; a CA bundle can be given. The bearer token is passed
  in as a string (the kube layer reads it from a Secret) and is never logged or
  put in an error message.
- **No ambient configuration.** ``trust_env=False``: no proxy variables or
  ``.netrc`` credentials leak into requests to Prometheus.
- **Bounded.** Every request has a timeout (also sent to Prometheus as its own
  query timeout) and answers larger than :data:`MAX_ANSWER_BYTES` are refused.

Each query is counted in :data:`modeldeploy.analysis.metrics.PROMETHEUS_QUERIES`
by outcome and timed.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from modeldeploy.analysis.metrics import PROMETHEUS_QUERIES, PROMETHEUS_QUERY_SECONDS, QueryOutcome
from modeldeploy.api import PrometheusSource

MAX_GET_QUERY_LENGTH = 2048
"""Longest URL-encoded query sent with GET; longer ones are POSTed."""

MAX_ANSWER_BYTES = 4 * 1024 * 1024
"""Larger answers are refused: one number never needs this much."""

MAX_ERROR_LENGTH = 300
"""Error texts are cut to this length; they end up in status.analysis[].message."""

API_PATH = "/api/v1/query"

_REASON = re.compile(r"\[(Errno -?\d+|SSL: \w+)\] [^'\"]+")
"""The useful part of a urllib3 error text: ``[Errno 111] Connection refused``, ``[SSL: ...] ...``."""


@dataclass(frozen=True)
class QueryResult:
    """One query's answer: a finite ``value``, or ``None`` and the ``error`` that says why."""

    query: str
    outcome: QueryOutcome
    value: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether there is a number to judge."""
        return self.value is not None


class PrometheusClient:
    """Instant queries against one Prometheus HTTP API.

    ``address`` is the base URL (``http://prometheus.monitoring:9090``, possibly
    with a path prefix). ``verify=False`` skips TLS verification; ``ca_file``
    names a CA bundle to verify against instead of the system's. One client holds
    one connection pool (``session``, a ``requests.Session``); use it from one
    thread at a time and :meth:`close` it.
    """

    def __init__(
        self,
        address: str,
        bearer_token: str | None = None,
        *,
        verify: bool = True,
        ca_file: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.address = address.rstrip("/")
        self.url = self.address + API_PATH
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ca_file if ca_file else verify
        self.session.headers["Accept"] = "application/json"
        self.session.headers["User-Agent"] = "modeldeploy"
        token = (bearer_token or "").strip()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def from_source(
        cls,
        source: PrometheusSource,
        bearer_token: str | None = None,
        *,
        ca_file: str | None = None,
        timeout: float = 10.0,
    ) -> PrometheusClient:
        """A client for ``spec.analysis.prometheus``; the caller has read its bearer token Secret."""
        return cls(
            source.address,
            bearer_token,
            verify=not source.insecure_skip_verify,
            ca_file=ca_file,
            timeout=timeout,
        )

    def query(self, promql: str) -> QueryResult:
        """Evaluate ``promql`` now. Never raises for network, HTTP or data problems."""
        started = time.monotonic()
        try:
            result = self._query(promql)
        finally:
            PROMETHEUS_QUERY_SECONDS.observe(time.monotonic() - started)
        PROMETHEUS_QUERIES.labels(outcome=result.outcome.value).inc()
        return result

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, promql: str) -> QueryResult:
        params = {"query": promql, "timeout": f"{self.timeout:g}"}
        try:
            if len(urlencode(params)) <= MAX_GET_QUERY_LENGTH:
                response = self.session.get(self.url, params=params, timeout=self.timeout, stream=True)
            else:
                response = self.session.post(self.url, data=params, timeout=self.timeout, stream=True)
            with response:
                body = _read_limited(response)
        except requests.RequestException as error:
            if isinstance(error, requests.Timeout) or "timed out" in str(error):
                # a timeout while reading the body surfaces as a ConnectionError
                return _failed(promql, f"timed out after {self.timeout:g}s")
            return _failed(promql, _describe(error))
        if body is None:
            return _failed(promql, f"answer larger than {MAX_ANSWER_BYTES} bytes: aggregate the query")
        return parse_answer(promql, response.status_code, body)


def parse_answer(promql: str, status_code: int, body: bytes) -> QueryResult:
    """Read a ``/api/v1/query`` answer (HTTP status and body) into a :class:`QueryResult`."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or "status" not in answer:
        text = body[:MAX_ERROR_LENGTH].decode("utf-8", "replace").strip()
        return _failed(promql, f"HTTP {status_code}: not a Prometheus answer: {text!r}")
    if answer.get("status") != "success":
        kind = answer.get("errorType", "error")
        return _failed(promql, f"Prometheus {kind} (HTTP {status_code}): {answer.get('error', '')}")
    if not 200 <= status_code < 300:
        return _failed(promql, f"HTTP {status_code}")
    try:
        return _read_data(promql, answer["data"])
    except (KeyError, IndexError, TypeError, ValueError):
        return _failed(promql, "unexpected answer shape: " + json.dumps(answer.get("data")))


def _read_data(promql: str, data: dict[str, Any]) -> QueryResult:
    kind = data["resultType"]
    result = data["result"]
    if kind == "scalar":
        return _number(promql, result[1])
    if kind != "vector":
        return _failed(
            promql, f"query returned a {kind}, not one number: make it an instant vector or scalar"
        )
    if not result:
        return QueryResult(promql, QueryOutcome.EMPTY, error="no data: empty result")
    if len(result) > 1:
        return _failed(promql, f"query returned {len(result)} series; aggregate it to one (sum, max, avg)")
    sample = result[0]
    if "value" not in sample:
        return _failed(
            promql, "query returned a native histogram: turn it into a number (histogram_quantile)"
        )
    return _number(promql, sample["value"][1])


def _number(promql: str, text: str) -> QueryResult:
    value = float(text)
    if math.isnan(value):
        return QueryResult(promql, QueryOutcome.NAN, error="no data: NaN")
    if math.isinf(value):
        return QueryResult(promql, QueryOutcome.NAN, error=f"no data: {'+' if value > 0 else '-'}Inf")
    return QueryResult(promql, QueryOutcome.SUCCESS, value=value)


def _failed(promql: str, error: str) -> QueryResult:
    if len(error) > MAX_ERROR_LENGTH:
        error = error[: MAX_ERROR_LENGTH - 3] + "..."
    return QueryResult(promql, QueryOutcome.ERROR, error=error)


def _read_limited(response: requests.Response) -> bytes | None:
    """The body, or None when it is larger than MAX_ANSWER_BYTES."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=65536):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _describe(error: requests.RequestException) -> str:
    """A short reason for a network error, without the URL (which holds the whole query)."""
    kind = "TLS error" if isinstance(error, requests.exceptions.SSLError) else "cannot reach Prometheus"
    if isinstance(error, requests.exceptions.InvalidHeader):
        return "invalid bearer token: it must be one line of printable text"
    found = _REASON.search(str(error))
    return f"{kind}: {found.group(0) if found else type(error).__name__}"
