"""Progressive delivery against the host-process operator: the scenarios whose other end
listens on 127.0.0.1, which a pod cannot reach.

- The warm-up target is the stand-in model server on 127.0.0.1 (the session operator's
  --service-url-template); an operator pod would reach the candidate Service by its DNS
  name, and the real node has no cluster DNS yet.
- The Prometheus stand-ins (nothing listening, a recording server) are inline providers
  on 127.0.0.1 (--inline-providers, which the chart leaves off).

Everything else runs against the chart's operator pod: test_progressive.py.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from progressive import INTERVAL, error_rate_analysis, manifest, revision, route_state, stable_v1

from kubetest import apply, event_reasons, md_status, wait_for, wait_phase
from modeldeploy_dev.metrics import Exporter, wait_for_value
from modeldeploy_dev.modelserver import ModelServer

pytestmark = pytest.mark.usefixtures("operator")


def test_good_candidate_goes_warmup_shadow_canary_stable_with_weights_seen_in_the_route(
    cluster: Any, namespace: str, exporter: Exporter, prometheus: str, model_server: ModelServer
) -> None:
    cluster.kubectl(
        "-n",
        namespace,
        "create",
        "configmap",
        "fraud-warmup",
        '--from-literal=a.json={"features": [1, 2]}',
        '--from-literal=b.json={"features": [3, 4]}',
    )
    strategy = {
        "warmup": {
            "path": "/v2/models/fraud/infer",
            "requests": 20,
            "concurrency": 2,
            "payloadConfigMap": "fraud-warmup",
            "maxLatencyP99": "500ms",
            "maxErrorRate": 0.01,
        },
        "shadow": {"percent": 100, "duration": "6s"},
        "canary": {"steps": [{"weight": 20, "pause": "6s"}, {"weight": 60, "pause": "6s"}]},
    }
    stable_v1(cluster, namespace, strategy=strategy, analysis=error_rate_analysis())
    v2 = manifest("2.0.0", strategy=strategy, analysis=error_rate_analysis())
    candidate = revision(v2)
    exporter.set("model_error_rate", 0.001, namespace=namespace, revision=candidate)
    wait_for_value(
        prometheus,
        f'model_error_rate{{namespace="{namespace}",revision="{candidate}"}}',
        lambda v: v == 0.001,
    )

    apply(cluster, namespace, v2)
    seen: list[Any] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # Status first, then the route: the operator writes the route before the status, so once
        # the status says Stable, the route read after it is the final one.
        status = md_status(cluster, namespace, "fraud")
        state = route_state(cluster, namespace)
        if state and (not seen or seen[-1] != state):
            seen.append(state)
        if status.get("phase") == "Stable" and status["stable"]["revision"] == candidate:
            break
        time.sleep(0.1)
    assert md_status(cluster, namespace, "fraud")["stable"]["revision"] == candidate, seen
    mirrored = ((("fraud", 100),), 100)
    step1 = ((("fraud", 80), ("fraud-candidate", 20)), 0)
    step2 = ((("fraud", 40), ("fraud-candidate", 60)), 0)
    done = ((("fraud", 100),), 0)
    assert [s for s in seen if s in (mirrored, step1, step2)] == [mirrored, step1, step2], seen
    assert seen[-1] == done
    warmups = model_server.requests_for(candidate)
    assert len(warmups) == 20
    assert {w["body"] for w in warmups} == {'{"features": [1, 2]}', '{"features": [3, 4]}'}
    assert {w["path"] for w in warmups} == {"/v2/models/fraud/infer"}
    event_reasons(cluster, namespace, "WarmupPassed", "Promoted")


def test_unreachable_prometheus_holds_and_with_on_inconclusive_rollback_rolls_back(
    cluster: Any, namespace: str, exporter: Exporter
) -> None:
    closed = {"address": "http://127.0.0.1:9"}  # discard port: nothing listens
    strategy = {"canary": {"steps": [{"weight": 20, "pause": "5s"}]}}
    hold = error_rate_analysis(prometheus=closed, inconclusiveLimit=2)
    stable_v1(cluster, namespace, strategy=strategy, analysis=hold)
    apply(cluster, namespace, manifest("2.0.0", strategy=strategy, analysis=hold))
    wait_for("candidate measured", lambda: md_status(cluster, namespace, "fraud").get("analysis"), timeout=60)
    time.sleep(3 * INTERVAL)
    status = md_status(cluster, namespace, "fraud")
    assert status["phase"] == "Progressing" and status["candidate"]["step"] == 0
    result = status["analysis"][0]
    assert result["phase"] == "Inconclusive" and result["inconclusive"] >= 2
    assert "cannot reach Prometheus" in result["message"]

    rollback = error_rate_analysis(prometheus=closed, inconclusiveLimit=2, onInconclusive="Rollback")
    apply(cluster, namespace, manifest("2.0.0", strategy=strategy, analysis=rollback))
    status = wait_phase(cluster, namespace, "fraud", "RolledBack", timeout=60)
    assert status["history"][-1]["reason"] == "InconclusiveLimitReached"


class RecordingPrometheus:
    """Answers every instant query with one sample and records what it was asked and with which token."""

    def __init__(self, value: float) -> None:
        self.seen: list[tuple[str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query).get("query", [""])[0]
                owner.seen.append((query, self.headers.get("Authorization")))
                body = json.dumps(
                    {
                        "status": "success",
                        "data": {
                            "resultType": "vector",
                            "result": [{"metric": {}, "value": [time.time(), str(value)]}],
                        },
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_bearer_token_is_read_from_a_secret_in_the_namespace_and_sent_with_every_query(
    cluster: Any, namespace: str
) -> None:
    prometheus = RecordingPrometheus(0.001)
    try:
        cluster.kubectl("-n", namespace, "create", "secret", "generic", "prom", "--from-literal=token=s3cret")
        analysis = error_rate_analysis(
            prometheus={"address": prometheus.url, "bearerTokenSecretRef": {"name": "prom", "key": "token"}}
        )
        strategy = {"canary": {"steps": [{"weight": 20, "pause": "5s"}]}}
        stable_v1(cluster, namespace, strategy=strategy, analysis=analysis)
        doc = manifest("2.0.0", strategy=strategy, analysis=analysis)
        apply(cluster, namespace, doc)
        wait_for(
            "promoted",
            lambda: md_status(cluster, namespace, "fraud")["stable"]["revision"] == revision(doc),
            timeout=60,
        )
        assert prometheus.seen, "the operator never queried the configured Prometheus"
        assert {token for _, token in prometheus.seen} == {"Bearer s3cret"}
        assert all(f'revision="{revision(doc)}"' in query for query, _ in prometheus.seen)
    finally:
        prometheus.close()
