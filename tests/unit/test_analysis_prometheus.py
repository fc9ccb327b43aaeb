"""The Prometheus client: every answer becomes one number or a reason, and nothing raises.

The HTTP exchange is replaced by a requests transport adapter, so these tests
use no network; tests/integration/test_analysis_prometheus.py talks to a real
Prometheus and to a recording server on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from prometheus_client import REGISTRY
from requests.adapters import BaseAdapter

from modeldeploy.analysis import prometheus
from modeldeploy.analysis.metrics import QueryOutcome
from modeldeploy.analysis.prometheus import PrometheusClient, QueryResult, parse_answer
from modeldeploy.api import PrometheusSource

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


def test_a_promql_error_carries_prometheus_message() -> None:
    body = {"status": "error", "errorType": "bad_data", "error": 'parse error: unexpected "}"'}
    result = answer(body, status=400)
    assert result.outcome == QueryOutcome.ERROR
    assert result.error == 'Prometheus bad_data (HTTP 400): parse error: unexpected "}"'


def test_an_http_error_without_a_prometheus_body_is_reported_with_its_status() -> None:
    result = answer("<html>502 Bad Gateway</html>", status=502)
    assert result.error == "HTTP 502: not a Prometheus answer: '<html>502 Bad Gateway</html>'"


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


def test_long_error_texts_are_cut() -> None:
    result = answer({"status": "error", "errorType": "x", "error": "e" * 5000}, status=422)
    assert len(result.error or "") == prometheus.MAX_ERROR_LENGTH


class FakeAdapter(BaseAdapter):
    """A transport that records requests and answers with ``respond(request)``."""

    def __init__(self, respond: Callable[[requests.PreparedRequest], requests.Response]) -> None:
        super().__init__()
        self.respond = respond
        self.requests: list[requests.PreparedRequest] = []
        self.timeouts: list[Any] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.requests.append(request)
        self.timeouts.append(kwargs.get("timeout"))
        return self.respond(request)

    def close(self) -> None:
        pass


def respond_with(
    body: dict[str, Any] | bytes, status: int = 200
) -> Callable[[requests.PreparedRequest], requests.Response]:
    def respond(request: requests.PreparedRequest) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response.raw = _Raw(body if isinstance(body, bytes) else json.dumps(body).encode())
        response.request = request
        return response

    return respond


class _Raw:
    """Enough of urllib3's response for requests' iter_content."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, chunk_size: int, decode_content: bool = True) -> Iterator[bytes]:
        for start in range(0, len(self.data), chunk_size):
            yield self.data[start : start + chunk_size]

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


@pytest.fixture
def client() -> Iterator[PrometheusClient]:
    with PrometheusClient("http://prometheus.test:9090/prefix/", bearer_token=" s3cret\n", timeout=2.5) as c:
        yield c


def mount(
    client: PrometheusClient, respond: Callable[[requests.PreparedRequest], requests.Response]
) -> FakeAdapter:
    adapter = FakeAdapter(respond)
    client.session.mount("http://", adapter)
    client.session.mount("https://", adapter)
    return adapter


def test_a_query_is_a_get_with_the_token_and_a_timeout(client: PrometheusClient) -> None:
    adapter = mount(client, respond_with(vector("0.5")))
    assert client.query('rate(x{a="b"}[1m])').value == 0.5
    (request,) = adapter.requests
    url = urlsplit(request.url or "")
    assert (request.method, url.netloc, url.path) == ("GET", "prometheus.test:9090", "/prefix/api/v1/query")
    assert parse_qs(url.query) == {"query": ['rate(x{a="b"}[1m])'], "timeout": ["2.5"]}
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert adapter.timeouts == [2.5]


def test_a_long_query_is_posted_form_encoded(client: PrometheusClient) -> None:
    adapter = mount(client, respond_with(vector("1")))
    long_query = "sum(" + " + ".join(f'x{{i="{i}"}}' for i in range(400)) + ")"
    assert client.query(long_query).value == 1.0
    (request,) = adapter.requests
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    body = request.body if isinstance(request.body, str) else (request.body or b"").decode()
    assert parse_qs(body)["query"] == [long_query]


def test_no_token_sends_no_authorization_header() -> None:
    with PrometheusClient("http://p:9090", bearer_token="  ") as client:
        adapter = mount(client, respond_with(vector("1")))
        client.query(Q)
    assert "Authorization" not in adapter.requests[0].headers


def test_the_environment_is_not_trusted_and_tls_is_verified_by_default() -> None:
    with PrometheusClient("https://p:9090") as client:
        assert client.session.trust_env is False
        assert client.session.verify is True
    with PrometheusClient("https://p:9090", ca_file="/etc/ca.pem") as client:
        assert client.session.verify == "/etc/ca.pem"
    source = PrometheusSource(address="https://p:9090", insecure_skip_verify=True)
    with PrometheusClient.from_source(source, "t") as client:
        assert client.session.verify is False
        assert client.session.headers["Authorization"] == "Bearer t"


def _raising(error: Exception) -> Callable[[requests.PreparedRequest], requests.Response]:
    def respond(request: requests.PreparedRequest) -> requests.Response:
        raise error

    return respond


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (requests.ReadTimeout("read timed out"), "timed out after 2.5s"),
        (requests.ConnectTimeout("connect timed out"), "timed out after 2.5s"),
        (
            requests.ConnectionError(
                "HTTPConnectionPool(host='p', port=1): Max retries exceeded with url: "
                "/api/v1/query?query=secret (Caused by NewConnectionError('<urllib3.connection."
                "HTTPConnection>: Failed to establish a new connection: [Errno 111] Connection refused'))"
            ),
            "cannot reach Prometheus: [Errno 111] Connection refused",
        ),
        (
            requests.exceptions.SSLError(
                "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed (_ssl.c:1006)"
            ),
            "TLS error: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed (_ssl.c:1006)",
        ),
        (requests.ConnectionError("something else"), "cannot reach Prometheus: ConnectionError"),
    ],
)
def test_network_trouble_is_a_reason_not_an_exception(
    client: PrometheusClient, error: Exception, message: str
) -> None:
    mount(client, _raising(error))
    result = client.query(Q)
    assert (result.outcome, result.value, result.error) == (QueryOutcome.ERROR, None, message)


def test_a_token_that_is_not_one_line_is_a_reason_not_an_exception() -> None:
    with PrometheusClient("http://p:9090", bearer_token="a\nb") as client:
        mount(client, respond_with(vector("1")))
        result = client.query(Q)
    assert result.error == "invalid bearer token: it must be one line of printable text"
    assert "a\nb" not in (result.error or "")


def test_an_oversized_answer_is_refused(client: PrometheusClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prometheus, "MAX_ANSWER_BYTES", 1000)
    mount(client, respond_with(vector(*["1"] * 100)))
    result = client.query(Q)
    assert result.outcome == QueryOutcome.ERROR and "larger than 1000 bytes" in (result.error or "")


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
        (_raising(requests.ConnectionError("refused")), QueryOutcome.ERROR),
    ],
)
def test_each_query_is_counted_by_outcome(
    client: PrometheusClient,
    respond: Callable[[requests.PreparedRequest], requests.Response],
    outcome: QueryOutcome,
) -> None:
    mount(client, respond)
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
