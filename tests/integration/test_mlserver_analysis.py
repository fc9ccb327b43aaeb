"""Analysis on a real serving runtime's own metrics, found the way Prometheus finds pods in a cluster.

The operator runs as a pod from the chart on the real node. The ModelDeployment's pods run
MLServer 1.7.1 (its scikit-learn runtime, the demo's digit classifiers) and opt in to
scraping with the usual ``prometheus.io/*`` annotations. The local Prometheus discovers them
with Kubernetes service discovery (job ``pods``: relabelled to namespace, pod and revision,
real-node pods only), and the analysis queries are the ones MLServer's metrics answer:
``model_infer_request_success_total`` and ``model_infer_request_failure_total``.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import requests
import yaml

from kubetest import Release, apply, md_status
from modeldeploy_dev.cluster import SERVICE_CIDR, LocalCluster
from modeldeploy_dev.demo import models
from modeldeploy_dev.images import model_server_image
from modeldeploy_dev.inference import READY_PATH
from modeldeploy_dev.metrics import query
from modeldeploy_dev.node import NODE_NAME, POD_PLACEMENT, SUBNET

# The first use of the real node starts its cluster and may build images cold (minutes).
pytestmark = pytest.mark.timeout(900)

SELECT = 'namespace="{{namespace}}",revision="{{revision}}"'
# MLServer counts every V2 inference by outcome. The failure series exists, at 0, from the
# model's first request on; the success series only from the first success, so a candidate
# that fails every request still gets a ratio (1), not an empty, inconclusive result.
ERROR_RATE = (
    f"sum(rate(model_infer_request_failure_total{{{SELECT}}}[10s]))"
    f" / (sum(rate(model_infer_request_failure_total{{{SELECT}}}[10s]))"
    f" + (sum(rate(model_infer_request_success_total{{{SELECT}}}[10s])) or vector(0)))"
)
# Answers per second: a candidate nobody reaches is not judged healthy.
THROUGHPUT = f"sum(rate(model_infer_request_success_total{{{SELECT}}}[10s]))"
METRICS_PORT = 8082  # MLSERVER_METRICS_PORT in the model-server image


ANALYSIS = {
    "interval": "5s",
    "failureLimit": 1,
    "inconclusiveLimit": 30,
    "onInconclusive": "Hold",
    "metrics": [
        {"name": "error-rate", "query": ERROR_RATE, "max": 0.01},
        {"name": "throughput", "query": THROUGHPUT, "min": 1},
    ],
}
# Blue-green: the candidate is reachable through digits-candidate while the analysis runs.
STRATEGY = {"blueGreen": {"previewDuration": "20s", "autoPromote": True, "scaleDownDelay": "0s"}}


def allowed(url: str) -> str:
    """Only the node's bridge subnet and Service range are ever dialled (the network rule)."""
    host = ipaddress.ip_address(url.split("/")[2].split(":")[0])
    assert host in SUBNET or host in ipaddress.ip_network(SERVICE_CIDR), url
    return url


def get(cluster: LocalCluster, *args: str) -> dict[str, Any]:
    document = json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)
    assert isinstance(document, dict)
    return document


def digits(version: str, image: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "digits"},
        "spec": {
            "model": {"name": "digits", "version": version, "uri": f"s3://models/digits/{version}"},
            "replicas": 1,
            "runtime": {
                "image": image,
                "port": 8080,
                "readinessPath": READY_PATH,
                "podTemplate": {
                    "metadata": {
                        "annotations": {
                            "prometheus.io/scrape": "true",
                            "prometheus.io/port": str(METRICS_PORT),
                            "prometheus.io/path": "/metrics",
                        }
                    },
                    "spec": {**POD_PLACEMENT, "terminationGracePeriodSeconds": 5},
                },
            },
            **spec,
        },
    }


class Load:
    """Requests to the V2 inference endpoint of a Service, from a thread, until stopped."""

    def __init__(self, cluster: LocalCluster, namespace: str, service: str) -> None:
        self.cluster, self.namespace, self.service = cluster, namespace, service
        _, features, _, _ = models.split()
        rows = [float(v) for row in features[:4] for v in row]
        self.body = json.dumps(
            {"inputs": [{"name": "pixels", "shape": [4, 64], "datatype": "FP64", "data": rows}]}
        ).encode()
        self.answers: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _url(self) -> str | None:
        found = self.cluster.kubectl(
            "-n", self.namespace, "get", "service", self.service, "-o", "json", check=False
        )
        if found.returncode != 0:
            return None
        return allowed(f"http://{json.loads(found.stdout)['spec']['clusterIP']}/v2/models/digits/infer")

    def _run(self) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url: str | None = None
        while not self._stop.is_set():
            url = url or self._url()
            if url is None:
                time.sleep(0.5)
                continue
            request = urllib.request.Request(
                url, data=self.body, headers={"Content-Type": "application/json"}
            )
            try:
                with opener.open(request, timeout=5) as response:
                    code = int(response.status)
            except urllib.error.HTTPError as error:
                code = int(error.code)
            except OSError:
                code = 0
            self.answers[code] = self.answers.get(code, 0) + 1
            time.sleep(0.05)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def pod_targets(prometheus: str, namespace: str) -> list[dict[str, Any]]:
    response = requests.get(allowed(f"{prometheus}/api/v1/targets"), params={"state": "active"}, timeout=5)
    response.raise_for_status()
    return [
        t
        for t in response.json()["data"]["activeTargets"]
        if t["labels"].get("job") == "pods" and t["labels"].get("namespace") == namespace
    ]


def test_a_healthy_mlserver_candidate_is_promoted_on_its_own_metrics_found_by_pod_discovery(
    real_cluster: LocalCluster, real_namespace: str, operator_pod: Release
) -> None:
    server = model_server_image()
    real_cluster.import_images(server)
    prometheus = real_cluster.prometheus_url
    # A pod on a kwok node that asks to be scraped too: its IP is fake and must never be a target.
    real_cluster.kubectl(
        "-n", real_namespace, "apply", "-f", "-",
        input=yaml.safe_dump({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "on-kwok",
                "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT)},
            },
            "spec": {"containers": [{"name": "c", "image": server.reference}]},
        }),
    )  # fmt: skip

    apply(real_cluster, real_namespace, digits("1.0.0", server.reference))
    stable = wait_status(real_cluster, real_namespace, lambda s: s.get("phase") == "Stable", 240)
    v1 = stable["stable"]["revision"]

    with Load(real_cluster, real_namespace, "digits-candidate") as load:
        apply(
            real_cluster,
            real_namespace,
            digits("2.0.0", server.reference, strategy=STRATEGY, analysis=ANALYSIS),
        )
        seen: list[dict[str, Any]] = []

        def promoted(status: dict[str, Any]) -> bool:
            seen.extend(r for r in status.get("analysis") or [] if r not in seen)
            return status.get("phase") == "Stable" and status["stable"]["revision"] != v1

        final = wait_status(real_cluster, real_namespace, promoted, 300)
    candidate = final["stable"]["revision"]
    assert final["stable"]["version"] == "2.0.0"
    # The verdicts came from MLServer's counters: answers seen, none failed.
    passed = {r["metric"]: r["value"] for r in seen if r["phase"] == "Successful"}
    assert passed.get("error-rate") == 0.0, seen
    assert passed.get("throughput", 0) >= 1, seen
    assert load.answers.get(200, 0) > 0, load.answers

    # Prometheus found the candidate's pod itself, on the real node's subnet, with the labels
    # the queries select on; kwok's pod never became a target.
    targets = pod_targets(prometheus, real_namespace)
    [pod] = get(real_cluster, "-n", real_namespace, "pods", "-l", f"modeldeploy.io/revision={candidate}")[
        "items"
    ]
    assert pod["spec"]["nodeName"] == NODE_NAME
    [target] = [t for t in targets if t["labels"]["pod"] == pod["metadata"]["name"]]
    assert target["labels"]["revision"] == candidate
    assert target["scrapeUrl"] == f"http://{pod['status']['podIP']}:{METRICS_PORT}/metrics"
    assert all(ipaddress.ip_address(t["labels"]["instance"].split(":")[0]) in SUBNET for t in targets)
    assert not [t for t in targets if t["labels"]["pod"] == "on-kwok"]
    counted = query(
        prometheus,
        f'sum(model_infer_request_success_total{{namespace="{real_namespace}",revision="{candidate}"}})',
    )
    assert counted and float(counted[0]["value"][1]) > 0


def test_an_mlserver_candidate_that_fails_its_requests_is_rolled_back_on_its_own_metrics(
    real_cluster: LocalCluster, real_namespace: str, operator_pod: Release
) -> None:
    """A broken candidate: its model was trained on other features than the requests carry.
    MLServer loads it, so the pod is Ready (the model's own readiness, READY_PATH), but every
    prediction raises and MLServer answers 500 and counts each as a failure. (A model that
    does not load at all never gets Ready, and so never gets traffic.)"""
    server = model_server_image()
    real_cluster.import_images(server)
    apply(real_cluster, real_namespace, digits("1.0.0", server.reference))
    v1 = wait_status(real_cluster, real_namespace, lambda s: s.get("phase") == "Stable", 240)["stable"][
        "revision"
    ]

    broken = digits("2.0.0", server.reference, strategy=STRATEGY, analysis=ANALYSIS)
    three_features = (
        "import joblib; from sklearn.linear_model import LogisticRegression; "
        "joblib.dump(LogisticRegression().fit([[0, 0, 0], [1, 1, 1]], [0, 1]), '/tmp/model/model.joblib')"
    )
    wrong_features = (
        "cp -r /models/$MODEL_VERSION /tmp/model"
        f' && python -c "{three_features}"'
        " && exec mlserver start /tmp/model"
    )
    broken["spec"]["runtime"]["podTemplate"]["spec"]["containers"] = [
        {"name": "model", "command": ["/bin/sh", "-c", wrong_features]}
    ]
    with Load(real_cluster, real_namespace, "digits-candidate") as load:
        apply(real_cluster, real_namespace, broken)
        final = wait_status(real_cluster, real_namespace, lambda s: s.get("phase") == "RolledBack", 300)
    assert final["stable"]["revision"] == v1
    [entry] = [h for h in final.get("history") or [] if h["outcome"] == "RolledBack"]
    assert entry["version"] == "2.0.0" and entry["reason"] == "MetricFailed", entry
    assert load.answers.get(500, 0) > 0 and not load.answers.get(200), load.answers


def wait_status(cluster: LocalCluster, namespace: str, done: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = md_status(cluster, namespace, "digits")
        if done(status):
            return status
        time.sleep(0.5)
    raise AssertionError(f"digits never got there within {timeout}s; last status {status}")
