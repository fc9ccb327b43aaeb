"""The Prometheus client: every answer becomes one number or a reason, and nothing raises.

The HTTP exchange is replaced by a fake of the outbound module (one method), so
these tests use no network; tests/unit/test_analysis_outbound.py tests that
module over real sockets, and tests/integration/test_analysis_real_prometheus.py
talks to a real Prometheus and to a recording server on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fake_outbound import FakeOutbound
from prometheus_client import REGISTRY

from modeldeploy.analysis import prometheus
from modeldeploy.analysis.metrics import QueryOutcome
from modeldeploy.analysis.outbound import Answer, OutboundError
from modeldeploy.analysis.prometheus import PrometheusClient, QueryResult, parse_answer

Q = "up"


def vector(*values: str) -> dict[str, Any]:
    result = [{"metric": {"pod": f"p{i}"}, "value": [1700000000.0, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def answer(body: dict[str, Any] | str, status: int = 200) -> QueryResult:
    raw = body if isinstance(body, str) else json.dumps(body)
    return parse_answer(Q, status, raw.encode())


def test_a_one_sample_vector_is_its_value() -> None:
    assert answer(vector("0.003")) == QueryResult(Q, QueryOutcome.SUCCESS, value=0.003)


def test_a_scalar_is_its_value() -> None:
    result = answer({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "42"]}})
    assert result.value == 42.0 and result.ok


def test_an_empty_vector_is_no_data() -> None:
    result = answer(vector())
    assert (result.outcome, result.value, result.error) == (QueryOutcome.EMPTY, None, "no data: empty result")


@pytest.mark.parametrize(
    ("text", "error"), [("NaN", "no data: NaN"), ("+Inf", "no data: +Inf"), ("-Inf", "no data: -Inf")]
)
def test_nan_and_infinities_are_no_data(text: str, error: str) -> None:
    result = answer(vector(text))
    assert (result.outcome, result.value, result.error) == (QueryOutcome.NAN, None, error)


def test_several_series_ask_for_an_aggregation() -> None:
    result = answer(vector("1", "2", "3"))
    assert result.outcome == QueryOutcome.ERROR and result.value is None
    assert result.error == "query returned 3 series; aggregate it to one (sum, max, avg)"


def test_a_range_vector_is_not_one_number() -> None:
    result = answer({"status": "success", "data": {"resultType": "matrix", "result": []}})
    assert result.outcome == QueryOutcome.ERROR and "matrix" in (result.error or "")


def test_a_native_histogram_sample_is_not_one_number() -> None:
    body = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "histogram": [1, {}]}]},
    }
    assert "histogram_quantile" in (answer(body).error or "")


def test_a_promql_error_names_its_type_but_never_copies_the_answer_text() -> None:
    body = {"status": "error", "errorType": "bad_data", "error": 'parse error: unexpected "}" SECRET'}
    result = answer(body, status=400)
    assert result.outcome == QueryOutcome.ERROR
    assert result.error == "Prometheus bad_data (HTTP 400): run the query in Prometheus to see why"


def test_an_unknown_error_type_is_not_echoed() -> None:
    result = answer({"status": "error", "errorType": "root:x:0:0", "error": "e"}, status=422)
    assert result.error == "Prometheus error (HTTP 422): run the query in Prometheus to see why"


def test_an_http_error_without_a_prometheus_body_is_reported_with_its_status_only() -> None:
    result = answer("<html>502 Bad Gateway: internal-admin-token=abc</html>", status=502)
    assert result.error == "HTTP 502: not a Prometheus answer"


def test_a_redirect_is_reported_not_followed() -> None:
    assert answer("", status=302).error == "HTTP 302: redirects are not followed"


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        {"status": "success"},
        {"status": "success", "data": {"resultType": "vector", "result": [{"value": [1]}]}},
        {"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, "abc"]}]}},
        {"no": "status"},
    ],
)
def test_malformed_answers_are_errors_not_exceptions(body: dict[str, Any] | str) -> None:
    result = answer(body)
    assert result.outcome == QueryOutcome.ERROR and result.value is None and result.error


def respond_with(body: dict[str, Any] | bytes, status: int = 200) -> Callable[..., Answer]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda *_: Answer(status, {}, data)


def raising(error: Exception) -> Callable[..., Answer]:
    def respond(*_: object) -> Answer:
        raise error

    return respond


def make(respond: Callable[..., Answer], **kwargs: Any) -> tuple[PrometheusClient, FakeOutbound]:
    outbound = FakeOutbound(respond=respond)
    kwargs.setdefault("bearer_token", " s3cret\n")
    kwargs.setdefault("timeout", 2.5)
    return PrometheusClient("http://prometheus.test:9090/prefix/", outbound=outbound, **kwargs), outbound


def test_a_query_is_a_get_with_the_token_a_deadline_and_a_capped_answer() -> None:
    client, outbound = make(respond_with(vector("0.5")))
    assert client.query('rate(x{a="b"}[1m])').value == 0.5
    (call,) = outbound.calls
    url = urlsplit(call["url"])
    assert (call["method"], url.netloc, url.path) == ("GET", "prometheus.test:9090", "/prefix/api/v1/query")
    assert parse_qs(url.query) == {"query": ['rate(x{a="b"}[1m])'], "timeout": ["2.5"]}
    assert call["headers"]["Authorization"] == "Bearer s3cret"
    assert (call["deadline"], call["max_body"]) == (2.5, prometheus.MAX_ANSWER_BYTES)
    assert call["verify"] is True


def test_a_long_query_is_posted_form_encoded() -> None:
    client, outbound = make(respond_with(vector("1")))
    long_query = "sum(" + " + ".join(f'x{{i="{i}"}}' for i in range(400)) + ")"
    assert client.query(long_query).value == 1.0
    (call,) = outbound.calls
    assert call["method"] == "POST"
    assert call["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(call["body"].decode())["query"] == [long_query]


def test_no_token_sends_no_authorization_header_and_provider_headers_are_sent() -> None:
    client, outbound = make(respond_with(vector("1")), bearer_token="  ", headers={"X-Scope-OrgID": "team-a"})
    client.query(Q)
    assert "Authorization" not in outbound.calls[0]["headers"]
    assert outbound.calls[0]["headers"]["X-Scope-OrgID"] == "team-a"


def test_tls_is_verified_unless_told_otherwise() -> None:
    client, outbound = make(respond_with(vector("1")), verify=False, ca_file="/etc/ca.pem")
    client.query(Q)
    assert (outbound.calls[0]["verify"], outbound.calls[0]["ca_file"]) == (False, "/etc/ca.pem")


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (OutboundError("timeout", "after 2.5s"), "timed out after 2.5s"),
        (OutboundError("connection refused"), "cannot reach Prometheus: connection refused"),
        (OutboundError("TLS error", "CERTIFICATE_VERIFY_FAILED"), "cannot reach Prometheus: TLS error"),
        (
            OutboundError("refused by egress policy", "169.254.169.254: a link-local address"),
            "cannot reach Prometheus: refused by egress policy",
        ),
    ],
)
def test_network_trouble_is_a_short_reason_not_an_exception(error: Exception, message: str) -> None:
    client, _ = make(raising(error))
    result = client.query(Q)
    assert (result.outcome, result.value, result.error) == (QueryOutcome.ERROR, None, message)


def test_a_token_that_is_not_one_line_is_a_reason_not_an_exception() -> None:
    client, outbound = make(respond_with(vector("1")), bearer_token="a\nb")
    result = client.query(Q)
    assert result.error == "invalid bearer token: it must be one line of printable text"
    assert outbound.calls == []


def test_an_oversized_answer_is_refused() -> None:
    client, _ = make(raising(OutboundError(f"answer larger than {prometheus.MAX_ANSWER_BYTES} bytes")))
    result = client.query(Q)
    assert result.outcome == QueryOutcome.ERROR and "larger than" in (result.error or "")


def _count(outcome: QueryOutcome) -> float:
    return (
        REGISTRY.get_sample_value("modeldeploy_prometheus_queries_total", {"outcome": outcome.value}) or 0.0
    )


@pytest.mark.parametrize(
    ("respond", "outcome"),
    [
        (respond_with(vector("1")), QueryOutcome.SUCCESS),
        (respond_with(vector()), QueryOutcome.EMPTY),
        (respond_with(vector("NaN")), QueryOutcome.NAN),
        (respond_with({"status": "error", "errorType": "bad_data", "error": "x"}, 400), QueryOutcome.ERROR),
        (raising(OutboundError("connection refused")), QueryOutcome.ERROR),
    ],
)
def test_each_query_is_counted_by_outcome(respond: Callable[..., Answer], outcome: QueryOutcome) -> None:
    client, _ = make(respond)
    before = {o: _count(o) for o in QueryOutcome}
    client.query(Q)
    after = {o: _count(o) for o in QueryOutcome}
    assert {o: after[o] - before[o] for o in QueryOutcome} == {o: float(o == outcome) for o in QueryOutcome}


def test_every_outcome_is_exported_from_the_start() -> None:
    for outcome in QueryOutcome:
        assert (
            REGISTRY.get_sample_value("modeldeploy_prometheus_queries_total", {"outcome": outcome.value})
            is not None
        )
