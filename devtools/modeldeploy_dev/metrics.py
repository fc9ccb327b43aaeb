"""Metrics that tests and the demo control, and a way to wait until Prometheus sees them.

The local Prometheus discovers scrape targets from JSON files in a directory
(file_sd, refreshed every second). An ``Exporter`` serves a registry of its own
on 127.0.0.1 and registers itself there, so a test can set a gauge to a value,
wait until the real Prometheus has scraped it, and then let the operator read
it through PromQL exactly as it would in production.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIServer

import requests
from prometheus_client import CollectorRegistry, Gauge, start_http_server


class Exporter:
    """A Prometheus exporter on 127.0.0.1 whose gauge values a test sets."""

    def __init__(self, targets_dir: Path, labels: Mapping[str, str] | None = None) -> None:
        self.registry = CollectorRegistry()
        self._gauges: dict[str, Gauge] = {}
        server, thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self._server: WSGIServer = server
        self._thread: Thread = thread
        self.port = int(server.server_port)
        self.target_file = targets_dir / f"exporter-{uuid.uuid4().hex[:8]}.json"
        self.target_file.write_text(
            json.dumps([{"targets": [f"127.0.0.1:{self.port}"], "labels": dict(labels or {})}])
        )

    def set(self, metric: str, value: float, **labels: str) -> None:
        gauge = self._gauges.get(metric)
        if gauge is None:
            gauge = Gauge(metric, f"test-controlled {metric}", sorted(labels), registry=self.registry)
            self._gauges[metric] = gauge
        (gauge.labels(**labels) if labels else gauge).set(value)

    def remove(self, metric: str, **labels: str) -> None:
        gauge = self._gauges[metric]
        gauge.remove(*(labels[name] for name in sorted(labels)))

    def close(self) -> None:
        self.target_file.unlink(missing_ok=True)
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def query(prometheus_url: str, promql: str, timeout: float = 5) -> list[dict[str, Any]]:
    """An instant query's result vector (raises on an HTTP or Prometheus error)."""
    response = requests.get(f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=timeout)
    response.raise_for_status()
    body = response.json()
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus error for {promql!r}: {body}")
    return list(body["data"]["result"])


def scalar(prometheus_url: str, promql: str) -> float | None:
    """The single value of a query, or None when the result is empty.

    A query that matches more than one series is a test's mistake (two namespaces can hold a
    revision of the same name), so it raises instead of answering with whichever came first.
    """
    result = query(prometheus_url, promql)
    if not result:
        return None
    if len(result) > 1:
        raise AmbiguousQuery(f"{promql!r} matched {len(result)} series: {[r['metric'] for r in result]}")
    return float(result[0]["value"][1])


class AmbiguousQuery(ValueError):
    """A query meant to answer one value matched several series; narrow its label matchers."""


def wait_for_value(
    prometheus_url: str,
    promql: str,
    predicate: Callable[[float], bool],
    timeout: float = 30,
) -> float:
    """Wait until Prometheus answers promql with a value the predicate accepts."""
    deadline = time.monotonic() + timeout
    seen: float | None = None
    while time.monotonic() < deadline:
        try:
            seen = scalar(prometheus_url, promql)
        except (requests.RequestException, RuntimeError):
            seen = None
        if seen is not None and not math.isnan(seen) and predicate(seen):
            return seen
        time.sleep(0.2)
    raise TimeoutError(f"Prometheus never answered {promql!r} acceptably within {timeout}s; last {seen}")
