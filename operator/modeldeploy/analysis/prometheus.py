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
- **Secure by default.** TLS certificates are verified unless the provider
  says ``insecureSkipVerify``; a CA bundle can be given. The bearer token is
  passed in as a string (read by the caller from a Secret) and is never logged
  or put in an error message.
- **Under the egress rules.** Every call goes through
  :class:`~modeldeploy.analysis.outbound.Outbound`: allow-list checked after DNS
  resolution, no redirects, a total deadline (also sent to Prometheus as its
  own query timeout), answers capped at :data:`MAX_ANSWER_BYTES`.
- **Nothing of the answer's text in status.** An error is a short class
  (``HTTP 503``, ``timeout``, ``Prometheus bad_data``): a tenant who points a
  query at something that is not Prometheus learns nothing of its body.

Each query is counted in :data:`modeldeploy.analysis.metrics.PROMETHEUS_QUERIES`
by outcome and timed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from modeldeploy.analysis.metrics import PROMETHEUS_QUERIES, PROMETHEUS_QUERY_SECONDS, QueryOutcome
from modeldeploy.analysis.outbound import Outbound, OutboundError

MAX_GET_QUERY_LENGTH = 2048
"""Longest URL-encoded query sent with GET; longer ones are POSTed."""

MAX_ANSWER_BYTES = 4 * 1024 * 1024
"""Larger answers are refused: one number never needs this much."""

MAX_ERROR_LENGTH = 300
"""Error texts are cut to this length; they end up in status.analysis[].message."""

API_PATH = "/api/v1/query"

PROMETHEUS_ERROR_TYPES = frozenset(
    {"timeout", "canceled", "execution", "bad_data", "internal", "unavailable", "not_found", "not_acceptable"}
)
"""The ``errorType`` values Prometheus documents; anything else is reported as ``error``."""


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
    """Instant queries against one Prometheus HTTP API, through ``outbound``.

    ``address`` is the base URL (``http://prometheus.monitoring:9090``, possibly
    with a path prefix). ``verify=False`` skips TLS verification; ``ca_file``
    names a CA bundle to verify against instead of the system's; ``headers`` are
    sent with every query (e.g. Mimir's ``X-Scope-OrgID``). The client holds no
    connection: it may be used from several threads.
    """

    def __init__(
        self,
        address: str,
        bearer_token: str | None = None,
        *,
        outbound: Outbound,
        verify: bool = True,
        ca_file: str | None = None,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.address = address.rstrip("/")
        self.url = self.address + API_PATH
        self.timeout = timeout
        self.outbound = outbound
        self.verify = verify
        self.ca_file = ca_file
        self.headers = {"Accept": "application/json", **(headers or {})}
        token = (bearer_token or "").strip()
        self.token_invalid = any(ord(c) < 0x20 or ord(c) == 0x7F for c in token)
        if token and not self.token_invalid:
            self.headers["Authorization"] = f"Bearer {token}"

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
        """Nothing to release (kept so callers can use the client as a context manager)."""

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, promql: str) -> QueryResult:
        if self.token_invalid:
            return _failed(promql, "invalid bearer token: it must be one line of printable text")
        params = {"query": promql, "timeout": f"{self.timeout:g}"}
        encoded = urlencode(params)
        try:
            if len(encoded) <= MAX_GET_QUERY_LENGTH:
                answer = self._call("GET", f"{self.url}?{encoded}", None, {})
            else:
                form = {"Content-Type": "application/x-www-form-urlencoded"}
                answer = self._call("POST", self.url, encoded.encode(), form)
        except OutboundError as error:
            if error.kind == "timeout":
                return _failed(promql, f"timed out after {self.timeout:g}s")
            if error.kind.startswith("answer larger"):
                return _failed(promql, f"{error.kind}: aggregate the query")
            return _failed(promql, f"cannot reach Prometheus: {error.kind}")
        return parse_answer(promql, answer.status, answer.body)

    def _call(self, method: str, url: str, body: bytes | None, extra: dict[str, str]) -> Any:
        return self.outbound.request(
            method,
            url,
            deadline=self.timeout,
            max_body=MAX_ANSWER_BYTES,
            headers={**self.headers, **extra},
            body=body,
            verify=self.verify,
            ca_file=self.ca_file,
        )


def parse_answer(promql: str, status_code: int, body: bytes) -> QueryResult:
    """Read a ``/api/v1/query`` answer (HTTP status and body) into a :class:`QueryResult`."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if 300 <= status_code < 400:
        return _failed(promql, f"HTTP {status_code}: redirects are not followed")
    if not isinstance(answer, dict) or "status" not in answer:
        return _failed(promql, f"HTTP {status_code}: not a Prometheus answer")
    if answer.get("status") != "success":
        kind = answer.get("errorType")
        if kind not in PROMETHEUS_ERROR_TYPES:
            kind = "error"
        return _failed(
            promql, f"Prometheus {kind} (HTTP {status_code}): run the query in Prometheus to see why"
        )
    if not 200 <= status_code < 300:
        return _failed(promql, f"HTTP {status_code}")
    try:
        return _read_data(promql, answer["data"])
    except (KeyError, IndexError, TypeError, ValueError):
        return _failed(promql, "unexpected answer shape: not one number")


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
