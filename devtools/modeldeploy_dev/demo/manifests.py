"""The demo's ModelDeployment: a digits classifier behind a Gateway API route, judged by Prometheus.

Analysis runs three metrics on the candidate, from the model servers' own
counters (rates over a short window, the local Prometheus scrapes every second):

- ``error-rate``: 5xx answers / all answers, at most 1%;
- ``p99-latency``: the 99th percentile of the time to predict, at most 100 ms;
- ``misclassification-rate``: 1 - correct / labelled predictions, compared
  with the champion: at most 2 points worse than the stable revision
  (``compareToStable.maxDiff``, candidate - stable <= 0.02). A better model
  has a lower rate and passes; a model that lost accuracy fails, however fast
  and error-free it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from modeldeploy_dev.demo.models import DESCRIPTIONS, HeldOut, uri_for

NAMESPACE = "demo"
NAME = "digits"
WARMUP_CONFIGMAP = "digits-warmup"
SELECT = 'namespace="{{namespace}}",revision="{{revision}}"'


@dataclass(frozen=True)
class Timings:
    """How long each stage lasts; ``FAST`` is what CI runs, ``DEFAULT`` what ``make demo`` shows."""

    interval: str  # analysis interval
    window: str  # the PromQL rate window
    shadow: str
    steps: tuple[tuple[int, str], ...]  # canary (weight, pause)
    warmup_requests: int
    rate: float  # load, requests per second
    pause: float  # seconds between the scenarios' acts, to let a reader follow


FAST = Timings("5s", "10s", "10s", ((25, "10s"), (50, "10s")), 40, 40, 1)
DEFAULT = Timings("10s", "30s", "30s", ((10, "20s"), (25, "20s"), (50, "20s")), 200, 40, 5)

ERROR_RATE_MAX = 0.01
P99_MAX = 0.1
MISCLASSIFICATION_MAX_DIFF = 0.02


def queries(window: str) -> dict[str, str]:
    return {
        "error-rate": (
            f'sum(rate(model_requests_total{{{SELECT},code=~"5.."}}[{window}]))'
            f" / sum(rate(model_requests_total{{{SELECT}}}[{window}]))"
        ),
        "p99-latency": (
            "histogram_quantile(0.99, sum by (le) "
            f"(rate(model_request_duration_seconds_bucket{{{SELECT}}}[{window}])))"
        ),
        "misclassification-rate": (
            f"1 - sum(rate(model_correct_predictions_total{{{SELECT}}}[{window}]))"
            f" / sum(rate(model_labelled_predictions_total{{{SELECT}}}[{window}]))"
        ),
    }


def thresholds() -> dict[str, str]:
    """How the live view shows each metric's bound."""
    return {
        "error-rate": f"<= {ERROR_RATE_MAX}",
        "p99-latency": f"<= {P99_MAX}s",
        "misclassification-rate": f"<= stable + {MISCLASSIFICATION_MAX_DIFF}",
    }


def analysis(timings: Timings) -> dict[str, Any]:
    q = queries(timings.window)
    return {
        "interval": timings.interval,
        "failureLimit": 2,
        "inconclusiveLimit": 10,
        "onInconclusive": "Hold",
        "metrics": [
            {"name": "error-rate", "query": q["error-rate"], "max": ERROR_RATE_MAX},
            {"name": "p99-latency", "query": q["p99-latency"], "max": P99_MAX},
            {
                "name": "misclassification-rate",
                "query": q["misclassification-rate"],
                "compareToStable": {"maxDiff": MISCLASSIFICATION_MAX_DIFF},
            },
        ],
    }


def strategy(timings: Timings) -> dict[str, Any]:
    return {
        "warmup": {
            "path": "/v1/models/digits:predict",
            "requests": timings.warmup_requests,
            "concurrency": 4,
            "payloadConfigMap": WARMUP_CONFIGMAP,
            "maxLatencyP99": "300ms",
            "maxErrorRate": 0.01,
            "timeout": "1m",
        },
        "shadow": {"percent": 100, "duration": timings.shadow},
        "canary": {"steps": [{"weight": w, "pause": p} for w, p in timings.steps]},
    }


def model_deployment(version: str, timings: Timings, accuracy: float | None = None) -> dict[str, Any]:
    card: dict[str, Any] = {
        "owner": "ml-demo@example.com",
        "description": DESCRIPTIONS[version],
        "trainingData": "sklearn.datasets.load_digits, 60% split (seed 0)",
    }
    if accuracy is not None:
        card["metrics"] = {"heldOutAccuracy": f"{accuracy:.3f}"}
    return {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "model": {"name": "digits-classifier", "version": version, "uri": uri_for(version), "card": card},
            "runtime": {
                "image": "ghcr.io/acme/digits-server:1.0",
                "port": 8080,
                "readinessPath": "/ready",
                # Pods start unready, as when a readiness probe waits for the model to load;
                # the demo marks them Ready once its local server for the revision answers.
                "podTemplate": {"metadata": {"annotations": {"kwok.modeldeploy.io/unready": "true"}}},
            },
            "replicas": 2,
            "traffic": {
                "router": "gatewayAPI",
                # The demo's local proxy reads the route but writes no status on it, as no
                # gateway controller does: traffic moves without waiting for one.
                "gatewayAPI": {
                    "parentRefs": [{"name": "public"}],
                    "hostnames": ["digits.demo.local"],
                    "acceptanceWait": "0s",
                },
            },
            "strategy": strategy(timings),
            "analysis": analysis(timings),
        },
    }


def warmup_configmap(held_out: HeldOut, count: int = 5) -> dict[str, Any]:
    """A few held-out rows without their labels: what warm-up sends."""
    data = {f"row-{i}.json": json.dumps({"features": held_out.rows[i]}) for i in range(count)}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": WARMUP_CONFIGMAP, "namespace": NAMESPACE},
        "data": data,
    }
