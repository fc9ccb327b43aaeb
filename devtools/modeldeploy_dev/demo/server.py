"""One model server: the process the demo runs for one revision, on 127.0.0.1.

Run as ``python -m modeldeploy_dev.demo.server --model FILE --revision R
--namespace NS --port P``. It loads one pickled model and answers

- ``POST <any path>`` with ``{"features": [64 numbers], "label": 3?}``: the
  prediction as ``{"prediction": 7, "revision": ...}``; a request that carries
  its true label is also scored (in production the label arrives later, from
  feedback; here the load generator knows it);
- ``GET /ready``: 200 once the model is loaded (the readiness probe);
- ``GET /metrics``: Prometheus metrics labelled by namespace and revision:
  requests by status code, latency histogram, labelled and correct predictions.

Every series exists from the start at 0, so an error-rate query reads 0 and
not "no data" while nothing failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from modeldeploy_dev.demo.models import Classifier, load

LABELS = ("namespace", "revision")
FEATURES = 64


class Scoring:
    """A model and its metrics; what one request does, without HTTP."""

    def __init__(self, model: Classifier, namespace: str, revision: str) -> None:
        self.model = model
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "model_requests",
            "Prediction requests by HTTP status code",
            (*LABELS, "code"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "model_request_duration_seconds",
            "Time to answer a prediction request",
            LABELS,
            registry=self.registry,
        )
        self.labelled = Counter(
            "model_labelled_predictions",
            "Predictions for requests that carried the true label",
            LABELS,
            registry=self.registry,
        )
        self.correct = Counter(
            "model_correct_predictions",
            "Labelled predictions that were right",
            LABELS,
            registry=self.registry,
        )
        self.labels = {"namespace": namespace, "revision": revision}
        for code in ("200", "400", "500"):
            self.requests.labels(**self.labels, code=code)
        self.labelled.labels(**self.labels)
        self.correct.labels(**self.labels)

    def answer(self, body: bytes) -> tuple[int, dict[str, Any]]:
        started = time.perf_counter()
        status, payload = self._predict(body)
        self.latency.labels(**self.labels).observe(time.perf_counter() - started)
        self.requests.labels(**self.labels, code=str(status)).inc()
        return status, payload

    def _predict(self, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            request = json.loads(body)
            features = [float(v) for v in request["features"]]
            if len(features) != FEATURES:
                raise ValueError(f"expected {FEATURES} features, got {len(features)}")
        except (ValueError, KeyError, TypeError) as error:
            return 400, {"error": f"bad request: {error}"}
        try:
            prediction = int(self.model.predict([features])[0])
        except Exception as error:  # a model that throws is a 500, as in any server
            return 500, {"error": f"prediction failed: {error}"}
        label = request.get("label")
        if label is not None:
            self.labelled.labels(**self.labels).inc()
            if int(label) == prediction:
                self.correct.labels(**self.labels).inc()
        return 200, {"prediction": prediction, "revision": self.labels["revision"]}

    def metrics(self) -> bytes:
        return generate_latest(self.registry)


def serve(scoring: Scoring, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, scoring.metrics(), CONTENT_TYPE_LATEST)
            elif self.path == "/ready":
                self._send(200, b'{"ready": true}')
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, payload = scoring.answer(self.rfile.read(length) if length else b"")
            self._send(status, json.dumps(payload).encode())

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One demo model server on 127.0.0.1.")
    parser.add_argument("--model", type=Path, required=True, help="pickled model from the demo's store")
    parser.add_argument("--revision", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    server = serve(Scoring(load(args.model), args.namespace, args.revision), args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
