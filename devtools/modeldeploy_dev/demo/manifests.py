"""The demo's ModelDeployment: a digits classifier served by MLServer pods on the real node,
behind the real node's gateway, judged by Prometheus on the model servers' own metrics.

Analysis runs three metrics on the candidate, each a rate over a short window of
what MLServer counts in the candidate's pods (Prometheus scrapes them every second):

- ``error-rate``: failed inferences / all inferences, at most 1%;
- ``mean-latency``: MLServer's inference time (its ``model_infer_request_duration``
  summary), at most 100 ms on average;
- ``misclassification-rate``: 1 - right / labelled answers (the model server
  image's runtime counts them when a request carries its true labels), compared
  with the champion: at most 2 points worse than the stable revision
  (``compareToStable.maxDiff``, candidate - stable <= 0.02). A better model
  has a lower rate and passes; a model that lost accuracy fails, however fast
  and error-free it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modeldeploy_dev.demo.registry import ALIAS, MODEL, PROVIDER
from modeldeploy_dev.gateway import PARENT_REF
from modeldeploy_dev.inference import READY_PATH
from modeldeploy_dev.node import POD_PLACEMENT

NAMESPACE = "demo"
NAME = "digits"
HOSTNAME = "digits.demo.local"
SELECT = 'namespace="{{namespace}}",revision="{{revision}}"'


@dataclass(frozen=True)
class Timings:
    """How long each stage lasts; ``FAST`` is what CI runs, ``DEFAULT`` what ``make demo`` shows."""

    interval: str  # analysis interval
    window: str  # the PromQL rate window
    shadow: str
    steps: tuple[tuple[int, str], ...]  # canary (weight, pause)
    rate: float  # load, requests per second
    pause: float  # seconds between the scenarios' acts, to let a reader follow


FAST = Timings("5s", "10s", "15s", ((25, "15s"), (50, "15s")), 20, 1)
DEFAULT = Timings("10s", "30s", "30s", ((10, "20s"), (25, "20s"), (50, "20s")), 20, 5)

ERROR_RATE_MAX = 0.01
MEAN_LATENCY_MAX = 0.1
MISCLASSIFICATION_MAX_DIFF = 0.02


def queries(window: str) -> dict[str, str]:
    def rate(metric: str) -> str:
        return f"sum(rate({metric}{{{SELECT}}}[{window}]))"

    return {
        # No failure series exists until a first failure: none is a rate of 0.
        "error-rate": (
            f"(({rate('model_infer_request_failure_total')}) or vector(0))"
            f" / ({rate('model_infer_request_success_total')}"
            f" + (({rate('model_infer_request_failure_total')}) or vector(0)))"
        ),
        "mean-latency": (
            f"{rate('model_infer_request_duration_sum')} / {rate('model_infer_request_duration_count')}"
        ),
        "misclassification-rate": (
            f"1 - {rate('digits_correct_predictions_total')} / {rate('digits_labelled_predictions_total')}"
        ),
    }


def thresholds() -> dict[str, str]:
    """How the live view shows each metric's bound."""
    return {
        "error-rate": f"<= {ERROR_RATE_MAX}",
        "mean-latency": f"<= {MEAN_LATENCY_MAX}s",
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
            {"name": "mean-latency", "query": q["mean-latency"], "max": MEAN_LATENCY_MAX},
            {
                "name": "misclassification-rate",
                "query": q["misclassification-rate"],
                "compareToStable": {"maxDiff": MISCLASSIFICATION_MAX_DIFF},
            },
        ],
    }


def strategy(timings: Timings) -> dict[str, Any]:
    # No warm-up: the operator runs on the host, and its warm-up requests would name the
    # candidate Service by its cluster DNS name, which the local cluster does not serve.
    return {
        "shadow": {"percent": 100, "duration": timings.shadow},
        "canary": {"steps": [{"weight": w, "pause": p} for w, p in timings.steps]},
    }


def model_deployment(image: str, timings: Timings, artifacts_url: str) -> dict[str, Any]:
    """The ModelDeployment follows ``digits-classifier@challenger`` in the MLflow registry: the
    operator resolves the alias to a version, its artifact URI and its card; the model pods fetch
    that artifact from the registry (``MLFLOW_ARTIFACTS_URL``). Nobody edits it to roll out."""
    return {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "model": {
                "name": MODEL,
                "registry": {"provider": PROVIDER, "model": MODEL, "alias": ALIAS},
            },
            "runtime": {
                # MLServer serves the registry's artifact (MODEL_URI), fetched at start.
                "image": image,
                "env": [{"name": "MLFLOW_ARTIFACTS_URL", "value": artifacts_url}],
                "port": 8080,
                "readinessPath": READY_PATH,
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
                "podTemplate": {"spec": {**POD_PLACEMENT, "terminationGracePeriodSeconds": 5}},
            },
            "replicas": 1,
            "traffic": {
                "router": "gatewayAPI",
                "gatewayAPI": {"parentRefs": [PARENT_REF], "hostnames": [HOSTNAME]},
            },
            "strategy": strategy(timings),
            "analysis": analysis(timings),
        },
    }
