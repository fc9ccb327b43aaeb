"""Analysis against a real Prometheus: thresholds, champion/challenger, missing data, tokens, injection.

Series come from an exporter the tests control, scraped by the local Prometheus
(every second); everything else the client talks to is a small recording HTTP
server. Every connection goes to 127.0.0.1.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from prometheus_client import REGISTRY

from modeldeploy.analysis import (
    Measurement,
    PrometheusClient,
    QueryOutcome,
    measure,
    render_query,
    rollout_variables,
)
from modeldeploy.analysis.outbound import EgressPolicy, Outbound
from modeldeploy.api import AnalysisMetric, CompareToStable, MeasurementPhase
from modeldeploy_dev.cluster import LocalCluster
from modeldeploy_dev.metrics import Exporter, query, wait_for_value

SUITE = f"analysis-{uuid.uuid4().hex[:8]}"
METRIC = "modeldeploy_test_analysis_value"
SELECTOR = f'{METRIC}{{suite="{SUITE}",namespace="{{{{namespace}}}}",revision="{{{{revision}}}}"}}'
"""The metric for one (namespace, revision), as a template: namespace picks the test's group of series."""

INJECTION = 'x"} or vector(1) or {a!="'
"""Pasted unescaped after ``revision="``, this makes a valid query that always answers 1."""
NASTY = [
    INJECTION,
    'a"b',
    "back\\slash\\",
    "new\nline",
    "tab\there",
    "it's",
    "`tick`",
    "ünïcødé ✓ 😀",
    "{{role}}",
]
REGEX_VALUES = {"3.2.0": 1.0, "3x2y0": 2.0, ".*": 3.0, "a|b": 4.0, "a": 5.0, "b": 6.0}

SERIES: dict[tuple[str, str], float] = {
    ("judge", "good"): 0.003,
    ("judge", "bad"): 0.02,
    ("champion", "stable"): 0.30,
    ("champion", "candidate"): 0.45,
    ("nan", "candidate"): math.nan,
    **{("literal", value): 10.0 + index for index, value in enumerate(NASTY)},
    **{("regex", value): number for value, number in REGEX_VALUES.items()},
}

SUCCESSFUL, FAILED, INCONCLUSIVE = (
    MeasurementPhase.SUCCESSFUL,
    MeasurementPhase.FAILED,
    MeasurementPhase.INCONCLUSIVE,
)

LOCAL = Outbound(EgressPolicy.parse(["127.0.0.0/8"]))
"""The local Prometheus and recorders listen on 127.0.0.1, which only an explicit listing allows."""


@pytest.fixture(scope="module")
def prometheus_url(cluster: LocalCluster) -> Iterator[str]:
    """The local Prometheus, once it has scraped every series in SERIES (NaN included)."""
    if not getattr(cluster, "local", False):
        pytest.skip("needs the local Prometheus, which scrapes exporters on 127.0.0.1")
    url = cluster.prometheus_url
    with Exporter(cluster.scrape_targets_dir, labels={"suite": SUITE}) as exporter:
        for (namespace, revision), number in SERIES.items():
            exporter.set(METRIC, number, namespace=namespace, revision=revision)
        wait_for_value(url, f'count({METRIC}{{suite="{SUITE}"}})', lambda n: n == len(SERIES), timeout=30)
        yield url


def variables(
    namespace: str, candidate: str, stable: str | None = None
) -> tuple[dict[str, str], dict[str, str] | None]:
    return rollout_variables(
        namespace=namespace,
        name="fraud",
        candidate_revision=candidate,
        candidate_version="3.2.0",
        stable_revision=stable,
        stable_version="3.1.0" if stable else None,
        interval="1m",
    )


def measure_one(
    url: str, metric: AnalysisMetric, namespace: str, candidate: str, stable: str | None = None
) -> Measurement:
    with PrometheusClient(url, outbound=LOCAL, timeout=5) as client:
        (measurement,) = measure([metric], *variables(namespace, candidate, stable), client)
    return measurement


def error_rate(**bounds: Any) -> AnalysisMetric:
    return AnalysisMetric(name="error-rate", query=SELECTOR, **bounds)


def test_a_value_below_max_is_successful_and_above_it_failed(prometheus_url: str) -> None:
    good = measure_one(prometheus_url, error_rate(max=0.01), "judge", "good")
    bad = measure_one(prometheus_url, error_rate(max=0.01), "judge", "bad")
    assert (good.phase, good.value, good.message) == (SUCCESSFUL, 0.003, "error-rate 0.003 <= max 0.01")
    assert (bad.phase, bad.value, bad.message) == (FAILED, 0.02, "error-rate 0.02 > max 0.01")


def test_a_min_bound_fails_a_value_below_it(prometheus_url: str) -> None:
    assert measure_one(prometheus_url, error_rate(min=0.01), "judge", "good").phase == FAILED


def test_champion_challenger_fails_one_and_a_half_times_the_stable_at_ratio_1_2_and_passes_at_2(
    prometheus_url: str,
) -> None:
    def p99(max_ratio: float) -> AnalysisMetric:
        return AnalysisMetric(
            name="p99-latency",
            query=SELECTOR,
            max=1.0,
            compare_to_stable=CompareToStable(max_ratio=max_ratio),
        )

    strict = measure_one(prometheus_url, p99(1.2), "champion", "candidate", stable="stable")
    lenient = measure_one(prometheus_url, p99(2.0), "champion", "candidate", stable="stable")
    assert (strict.phase, strict.value, strict.stable_value) == (FAILED, 0.45, 0.30)
    assert strict.message == "p99-latency 0.45 > 1.2 x stable 0.3 (maxRatio)"
    assert lenient.phase == SUCCESSFUL
    assert lenient.message == "p99-latency 0.45 <= max 1; 0.45 <= 2 x stable 0.3 (maxRatio)"


def test_an_empty_result_is_inconclusive(prometheus_url: str) -> None:
    measurement = measure_one(prometheus_url, error_rate(max=0.01), "judge", "never-deployed")
    assert (measurement.phase, measurement.value) == (INCONCLUSIVE, None)
    assert measurement.message == "error-rate: no data: empty result"


def test_a_nan_result_is_inconclusive(prometheus_url: str) -> None:
    measurement = measure_one(prometheus_url, error_rate(max=0.01), "nan", "candidate")
    assert (measurement.phase, measurement.message) == (INCONCLUSIVE, "error-rate: no data: NaN")


def test_a_missing_stable_series_makes_a_comparison_inconclusive(prometheus_url: str) -> None:
    metric = AnalysisMetric(name="p99", query=SELECTOR, compare_to_stable=CompareToStable(max_ratio=1.2))
    measurement = measure_one(prometheus_url, metric, "champion", "candidate", stable="gone")
    assert measurement.phase == INCONCLUSIVE
    assert measurement.message == "p99 0.45 against stable: no data: empty result"


def test_several_series_are_inconclusive_with_a_hint(prometheus_url: str) -> None:
    metric = AnalysisMetric(name="all", query=f'{METRIC}{{suite="{SUITE}",namespace="judge"}}', max=1.0)
    measurement = measure_one(prometheus_url, metric, "judge", "good")
    assert measurement.phase == INCONCLUSIVE
    assert measurement.message == "all: query returned 2 series; aggregate it to one (sum, max, avg)"


def test_a_promql_error_is_inconclusive_with_prometheus_message(prometheus_url: str) -> None:
    metric = AnalysisMetric(name="broken", query='sum(rate(x{revision="{{revision}}"}[1m])', max=1.0)
    measurement = measure_one(prometheus_url, metric, "judge", "good")
    assert measurement.phase == INCONCLUSIVE
    assert measurement.message.startswith("broken: Prometheus bad_data (HTTP 400): ")


def _count(outcome: QueryOutcome) -> float:
    return (
        REGISTRY.get_sample_value("modeldeploy_prometheus_queries_total", {"outcome": outcome.value}) or 0.0
    )


def test_unreachable_prometheus_is_inconclusive_with_the_error_and_counted() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    before = _count(QueryOutcome.ERROR)
    measurement = measure_one(f"http://127.0.0.1:{closed_port}", error_rate(max=0.01), "judge", "good")
    assert measurement.phase == INCONCLUSIVE
    assert measurement.message == "error-rate: cannot reach Prometheus: connection refused"
    assert _count(QueryOutcome.ERROR) == before + 1


# A recording stand-in for Prometheus


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]


@dataclass
class RecordingServer:
    """An HTTP server on 127.0.0.1 that answers like Prometheus and records each request."""

    answer: dict[str, Any] = field(
        default_factory=lambda: {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1700000000, "0.5"]}]},
        }
    )
    delay: float = 0.0
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                split = urlsplit(self.path)
                self._record(split.path, parse_qs(split.query))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                self._record(urlsplit(self.path).path, parse_qs(self.rfile.read(length).decode()))

            def _record(self, path: str, params: dict[str, list[str]]) -> None:
                server.requests.append(Recorded(self.command, path, params["query"][0], dict(self.headers)))
                time.sleep(server.delay)
                body = json.dumps(server.answer).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def recorder() -> Iterator[RecordingServer]:
    recording = RecordingServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), recording.handler())
    recording.url = f"http://127.0.0.1:{httpd.server_address[1]}/prometheus"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield recording
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_bearer_token_is_sent_and_the_path_prefix_kept(recorder: RecordingServer) -> None:
    with PrometheusClient(recorder.url, bearer_token="s3cret-token\n", outbound=LOCAL) as client:
        result = client.query("up")
    assert result.value == 0.5
    (request,) = recorder.requests
    assert (request.method, request.path, request.query) == ("GET", "/prometheus/api/v1/query", "up")
    assert request.headers["Authorization"] == "Bearer s3cret-token"


def test_a_slow_prometheus_times_out_into_inconclusive(recorder: RecordingServer) -> None:
    recorder.delay = 1.0
    started = time.monotonic()
    with PrometheusClient(recorder.url, outbound=LOCAL, timeout=0.3) as client:
        (measurement,) = measure([error_rate(max=0.01)], *variables("judge", "good"), client)
    assert time.monotonic() - started < 1.0
    assert (measurement.phase, measurement.message) == (INCONCLUSIVE, "error-rate: timed out after 0.3s")


def test_an_injection_attempt_reaches_prometheus_as_one_escaped_label_value(
    recorder: RecordingServer,
) -> None:
    with PrometheusClient(recorder.url, outbound=LOCAL) as client:
        measure([error_rate(max=1.0)], *variables("judge", INJECTION), client)
    (request,) = recorder.requests
    assert request.query == (
        f'{METRIC}{{suite="{SUITE}",namespace="judge",revision="x\\"}} or vector(1) or {{a!=\\""}}'
    )


def test_prometheus_reads_an_injection_attempt_as_a_literal_label_value(prometheus_url: str) -> None:
    raw = SELECTOR.replace("{{namespace}}", "literal").replace("{{revision}}", "y" + INJECTION[1:])
    assert query(prometheus_url, raw)[0]["value"][1] == "1", "unescaped, the value would inject vector(1)"

    matched = measure_one(prometheus_url, error_rate(max=100.0), "literal", INJECTION)
    assert (matched.phase, matched.value) == (SUCCESSFUL, 10.0)
    unmatched = measure_one(prometheus_url, error_rate(max=100.0), "literal", "y" + INJECTION[1:])
    assert (unmatched.phase, unmatched.message) == (INCONCLUSIVE, "error-rate: no data: empty result")


@pytest.mark.parametrize("quote", ['"', "'"])
@pytest.mark.parametrize("index", range(len(NASTY)))
def test_prometheus_matches_any_value_literally_in_either_quote(
    prometheus_url: str, quote: str, index: int
) -> None:
    template = SELECTOR.replace('"{{revision}}"', f"{quote}{{{{revision}}}}{quote}")
    rendered = render_query(template, {"namespace": "literal", "revision": NASTY[index]})
    (sample,) = query(prometheus_url, rendered)
    assert sample["metric"]["revision"] == NASTY[index]
    assert float(sample["value"][1]) == 10.0 + index


@pytest.mark.parametrize("value", list(REGEX_VALUES))
def test_prometheus_matches_a_value_in_a_regex_matcher_as_itself_only(
    prometheus_url: str, value: str
) -> None:
    template = SELECTOR.replace('revision="{{revision}}"', 'revision=~"{{revision}}"')
    with PrometheusClient(prometheus_url, outbound=LOCAL) as client:
        result = client.query(render_query(template, {"namespace": "regex", "revision": value}))
    assert (result.outcome, result.value) == (QueryOutcome.SUCCESS, REGEX_VALUES[value])
